-- grain: none; drops the date's keyed and changed fact rows once they are applied.
drop table if exists staging.:"facts_table";

drop table if exists staging.:"changes_table";
