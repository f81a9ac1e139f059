DROP TABLE record_outcomes;
