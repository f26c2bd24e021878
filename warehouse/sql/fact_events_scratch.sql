-- grain: none; drops a scratch table a re-load keyed the date's staged events into, should one be left: the load
-- creates it again from fact_events.sql's rows (activities/facts.ts keyedFacts), with fact_events' columns.
drop table if exists staging.:"facts_table";
