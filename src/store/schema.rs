//! Diesel's view of the tables in `migrations/postgres`.

diesel::table! {
    integrations (id) {
        id -> Int8,
        name -> Text,
        network -> Text,
        spec -> Text,
        spec_hash -> Text,
        source_file -> Text,
        state -> Text,
        last_error -> Nullable<Text>,
        last_success_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        attempted_spec_hash -> Nullable<Text>,
        applied_policy -> Nullable<Text>,
    }
}

diesel::table! {
    campaigns (id) {
        id -> Int8,
        integration_id -> Int8,
        external_id -> Text,
        name -> Text,
        advertiser -> Text,
        status -> Text,
        visibility -> Text,
        preview_url -> Nullable<Text>,
        tracking_url -> Nullable<Text>,
        impression_url -> Nullable<Text>,
        thumbnail_url -> Nullable<Text>,
        revenue -> Nullable<Numeric>,
        payout -> Nullable<Numeric>,
        revenue_max -> Nullable<Numeric>,
        payout_max -> Nullable<Numeric>,
        payout_kind -> Text,
        currency -> Nullable<Text>,
        model -> Nullable<Text>,
        models -> Jsonb,
        objective -> Nullable<Text>,
        redirect -> Int4,
        countries -> Jsonb,
        blocked_countries -> Jsonb,
        os -> Jsonb,
        blocked_os -> Jsonb,
        devices -> Jsonb,
        min_os_version -> Nullable<Text>,
        category -> Nullable<Text>,
        description -> Nullable<Text>,
        kpi -> Nullable<Text>,
        payouts -> Jsonb,
        caps -> Jsonb,
        import_caps -> Jsonb,
        cap_settings -> Jsonb,
        settings -> Jsonb,
        starts_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        raw -> Text,
        content_hash -> Text,
        raw_hash -> Text,
        applied_hash -> Text,
        drifted -> Bool,
        write_token -> Int8,
        status_before_pause -> Nullable<Text>,
        first_seen_at -> Timestamptz,
        changed_at -> Timestamptz,
        removed_at -> Nullable<Timestamptz>,
        removed_as -> Nullable<Text>,
    }
}

diesel::table! {
    publisher_payouts (integration_id, external_id, kind, name) {
        integration_id -> Int8,
        external_id -> Text,
        kind -> Text,
        name -> Text,
        payout -> Numeric,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Int8,
        integration_id -> Int8,
        trigger -> Text,
        spec_hash -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        status -> Text,
        pages -> Int4,
        fetched -> Int4,
        created -> Int4,
        updated -> Int4,
        unchanged -> Int4,
        skipped -> Int4,
        removed -> Int4,
        restored -> Int4,
        error -> Nullable<Text>,
        listed -> Nullable<Int4>,
        filtered -> Int4,
        accepted_removals -> Bool,
        drift_corrected -> Int4,
        warnings -> Int4,
    }
}

diesel::table! {
    sync_skips (run_id, reason) {
        run_id -> Int8,
        external_id -> Nullable<Text>,
        reason -> Text,
        detail -> Text,
    }
}

diesel::table! {
    sync_warnings (run_id, external_id) {
        run_id -> Int8,
        external_id -> Text,
        message -> Text,
    }
}

diesel::table! {
    record_outcomes (integration_id, external_id) {
        integration_id -> Int8,
        external_id -> Text,
        record_hash -> Text,
        revision -> Text,
        skip_reason -> Nullable<Text>,
        detail -> Text,
        applied_hash -> Text,
    }
}

diesel::table! {
    refresh_requests (id) {
        id -> Int8,
        integration_id -> Int8,
        requested_at -> Timestamptz,
        requested_by -> Text,
        claimed_at -> Nullable<Timestamptz>,
        claimed_by -> Nullable<Text>,
        run_id -> Nullable<Int8>,
        finished_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
        coalesced -> Bool,
    }
}

diesel::table! {
    schedule_claims (integration, tick) {
        integration -> Text,
        tick -> Timestamptz,
        claimed_by -> Text,
        claimed_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    campaign_changes (position) {
        position -> Int8,
        integration_id -> Int8,
        run_id -> Nullable<Int8>,
        campaign_id -> Int8,
        external_id -> Text,
        kind -> Text,
        status -> Text,
        changed_columns -> Jsonb,
        changed_at -> Timestamptz,
        cause -> Nullable<Text>,
    }
}

diesel::table! {
    /// A connection's temporary table of feed entries waiting for their run
    /// to end (`postgres::PENDING_CHANGES_TABLE`).
    pending_changes (seq) {
        seq -> Int8,
        integration_id -> Int8,
        campaign_id -> Int8,
        external_id -> Text,
        kind -> Text,
        status -> Text,
        changed_columns -> Jsonb,
        changed_at -> Timestamptz,
        cause -> Nullable<Text>,
    }
}

diesel::joinable!(campaigns -> integrations (integration_id));
diesel::joinable!(campaign_changes -> integrations (integration_id));
diesel::joinable!(refresh_requests -> integrations (integration_id));
diesel::joinable!(sync_runs -> integrations (integration_id));
diesel::joinable!(sync_skips -> sync_runs (run_id));
diesel::allow_tables_to_appear_in_same_query!(
    integrations,
    campaigns,
    publisher_payouts,
    sync_runs,
    sync_skips,
    sync_warnings,
    refresh_requests,
    schedule_claims,
    campaign_changes,
    pending_changes
);
