-- grain: none; drops the dim_user work tables of the date once their changes are applied. The staged users
-- (users_table) stay: the date's fact load reads them (fact_events.sql), and its next stage run drops them.
drop table if exists staging.:"moved_table";

drop table if exists staging.:"versions_table";

drop table if exists staging.:"desired_table";

drop table if exists staging.:"changes_table";

drop table if exists staging.:"history_table";

drop table if exists staging.:"existing_table";
