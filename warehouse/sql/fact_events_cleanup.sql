-- grain: none; drops the date's keyed fact rows once they are applied.
drop table if exists staging.:"facts_table";
