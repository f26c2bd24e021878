-- grain: none; drops the dim_user work tables of the date once their changes are applied.
drop table if exists staging.:"moved_table";

drop table if exists staging.:"versions_table";

drop table if exists staging.:"changes_table";

drop table if exists staging.:"users_table";

drop table if exists staging.:"history_table";

drop table if exists staging.:"existing_table";
