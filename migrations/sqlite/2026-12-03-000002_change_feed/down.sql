DROP TABLE campaign_changes;
