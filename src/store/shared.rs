//! The queries whose diesel DSL reads the same on both backends, written once
//! and expanded into each backend's module (`shared_queries!(Connection)`),
//! where the table names resolve to that backend's schema and diesel checks
//! the types for that backend.

macro_rules! shared_queries {
    ($Conn:ty) => {
        #[derive(diesel::Insertable)]
        #[diesel(table_name = sync_skips, treat_none_as_default_value = false)]
        struct NewSkip<'a> {
            run_id: i64,
            external_id: Option<&'a str>,
            reason: &'static str,
            detail: &'a str,
        }

        fn integration_id(conn: &mut $Conn, name: &str) -> Result<Option<i64>, StoreError> {
            use integrations::dsl as i;
            Ok(i::integrations
                .filter(i::name.eq(name))
                .select(i::id)
                .first(conn)
                .optional()?)
        }

        /// Under the run lock: fails the runs a dead process left `running`,
        /// and records a new `running` run.
        fn insert_run(
            conn: &mut $Conn,
            integration_id: i64,
            trigger: Trigger,
            spec_hash: &str,
        ) -> Result<RunId, StoreError> {
            use sync_runs::dsl as r;
            let now = Utc::now();
            diesel::update(
                r::sync_runs
                    .filter(r::integration_id.eq(integration_id))
                    .filter(r::status.eq("running")),
            )
            .set((
                r::status.eq("failed"),
                r::finished_at.eq(now),
                r::error.eq(INTERRUPTED),
            ))
            .execute(conn)?;
            let id = diesel::insert_into(r::sync_runs)
                .values((
                    r::integration_id.eq(integration_id),
                    r::trigger.eq(trigger.as_str()),
                    r::spec_hash.eq(spec_hash),
                    r::started_at.eq(now),
                    r::status.eq("running"),
                ))
                .returning(r::id)
                .get_result(conn)?;
            Ok(RunId(id))
        }

        /// Read in slices of [`INDEX_SLICE`] rows by id: the rows as loaded
        /// (hashes as text) are several times the index they become, and
        /// loading them all at once was the peak of a re-sync's memory.
        fn stored_index(conn: &mut $Conn, integration_id: i64) -> Result<StoredIndex, StoreError> {
            use campaigns::dsl as c;
            // Sized once: growing a map of 100k entries rehashes it repeatedly.
            let rows: i64 = c::campaigns
                .filter(c::integration_id.eq(integration_id))
                .count()
                .get_result(conn)?;
            let mut index = StoredIndex::with_capacity_and_hasher(
                usize::try_from(rows).unwrap_or(0),
                Default::default(),
            );
            let mut after = i64::MIN;
            loop {
                type Row = (i64, String, String, String, Option<DateTime<Utc>>, bool);
                let rows: Vec<Row> = c::campaigns
                    .filter(c::integration_id.eq(integration_id))
                    .filter(c::id.gt(after))
                    .order(c::id)
                    .limit(super::INDEX_SLICE)
                    .select((
                        c::id,
                        c::external_id,
                        c::applied_hash,
                        c::raw_hash,
                        c::removed_at,
                        c::drifted,
                    ))
                    .load(conn)?;
                let Some(last) = rows.last().map(|row| row.0) else {
                    return Ok(index);
                };
                after = last;
                index.extend(rows.into_iter().map(
                    |(id, external_id, applied_hash, raw_hash, removed_at, drifted)| {
                        (
                            external_id,
                            StoredCampaign {
                                id,
                                applied_hash: StoredHash::new(&applied_hash),
                                raw_hash: StoredHash::new(&raw_hash),
                                removed: removed_at.is_some(),
                                drifted,
                            },
                        )
                    },
                ));
            }
        }

        /// Read in slices by external id, like [`stored_index`].
        fn stored_outcomes(
            conn: &mut $Conn,
            integration_id: i64,
            revision: &str,
            each: &mut dyn FnMut(super::StoredOutcome),
        ) -> Result<bool, StoreError> {
            use record_outcomes::dsl as o;
            let mut after: Option<String> = None;
            loop {
                type Row = (String, String, Option<String>, String, String);
                let mut query = o::record_outcomes
                    .filter(o::integration_id.eq(integration_id))
                    .filter(o::revision.eq(revision))
                    .order(o::external_id)
                    .limit(super::INDEX_SLICE)
                    .select((
                        o::external_id,
                        o::record_hash,
                        o::skip_reason,
                        o::detail,
                        o::applied_hash,
                    ))
                    .into_boxed();
                if let Some(after) = &after {
                    query = query.filter(o::external_id.gt(after.clone()));
                }
                let rows: Vec<Row> = query.load(conn)?;
                let Some(last) = rows.last().map(|row| row.0.clone()) else {
                    break;
                };
                after = Some(last);
                for (external_id, record_hash, skip_reason, detail, applied_hash) in rows {
                    each(super::StoredOutcome {
                        external_id,
                        record_hash,
                        skip_reason,
                        detail,
                        applied_hash,
                    });
                }
            }
            Ok(diesel::select(diesel::dsl::exists(
                o::record_outcomes
                    .filter(o::integration_id.eq(integration_id))
                    .filter(o::revision.ne(revision)),
            ))
            .get_result(conn)?)
        }

        #[derive(diesel::Insertable)]
        #[diesel(table_name = record_outcomes, treat_none_as_default_value = false)]
        struct OutcomeRow<'a> {
            integration_id: i64,
            external_id: &'a str,
            record_hash: &'a str,
            revision: &'a str,
            skip_reason: Option<&'static str>,
            detail: &'a str,
            applied_hash: &'a str,
        }

        fn record_outcomes(
            conn: &mut $Conn,
            integration_id: i64,
            revision: &str,
            outcomes: &[super::NewOutcome<'_>],
            forget: &[&str],
        ) -> Result<(), StoreError> {
            use diesel::upsert::excluded;
            use record_outcomes::dsl as o;
            for chunk in forget.chunks(5_000) {
                diesel::delete(
                    o::record_outcomes
                        .filter(o::integration_id.eq(integration_id))
                        .filter(o::external_id.eq_any(chunk)),
                )
                .execute(conn)?;
            }
            // 7 parameters a row: well under either backend's limit per statement.
            for chunk in outcomes.chunks(4_000) {
                let rows: Vec<OutcomeRow<'_>> = chunk
                    .iter()
                    .map(|n| OutcomeRow {
                        integration_id,
                        external_id: n.external_id,
                        record_hash: n.record_hash,
                        revision,
                        skip_reason: n.skip_reason,
                        detail: n.detail,
                        applied_hash: n.applied_hash,
                    })
                    .collect();
                diesel::insert_into(record_outcomes::table)
                    .values(&rows)
                    .on_conflict((o::integration_id, o::external_id))
                    .do_update()
                    .set((
                        o::record_hash.eq(excluded(o::record_hash)),
                        o::revision.eq(excluded(o::revision)),
                        o::skip_reason.eq(excluded(o::skip_reason)),
                        o::detail.eq(excluded(o::detail)),
                        o::applied_hash.eq(excluded(o::applied_hash)),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        }

        fn prune_outcomes(
            conn: &mut $Conn,
            integration_id: i64,
            revision: &str,
        ) -> Result<(), StoreError> {
            use record_outcomes::dsl as o;
            diesel::delete(
                o::record_outcomes
                    .filter(o::integration_id.eq(integration_id))
                    .filter(o::revision.ne(revision)),
            )
            .execute(conn)?;
            Ok(())
        }

        fn remove_campaigns(
            conn: &mut $Conn,
            ids: &[i64],
            removed_as: &str,
            pause: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            use campaigns::dsl as c;
            for chunk in ids.chunks(5_000) {
                let target = c::campaigns.filter(c::id.eq_any(chunk));
                if pause {
                    // SET reads the row as it was: the status the pause replaces.
                    diesel::update(target)
                        .set((
                            c::removed_at.eq(now),
                            c::changed_at.eq(now),
                            c::status_before_pause.eq(c::status.nullable()),
                            c::status.eq("paused"),
                            c::removed_as.eq(removed_as),
                            c::write_token.eq(c::write_token + 1),
                        ))
                        .execute(conn)?;
                } else {
                    diesel::update(target)
                        .set((
                            c::removed_at.eq(now),
                            c::changed_at.eq(now),
                            c::removed_as.eq(removed_as),
                            c::write_token.eq(c::write_token + 1),
                        ))
                        .execute(conn)?;
                }
            }
            Ok(())
        }

        /// Stored campaigns with their integration's name: of one integration, or
        /// (with `needle`) those whose id is it or whose name contains it.
        fn campaign_records(
            conn: &mut $Conn,
            integration: Option<&str>,
            needle: Option<&str>,
            page: Option<(i64, i64)>,
        ) -> Result<Vec<(String, CampaignRecord)>, StoreError> {
            use campaigns::dsl as c;
            type Row = (
                String,
                (i64, String, String, String, String),
                (
                    StoredDecimal,
                    StoredDecimal,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ),
                (StoredJson, StoredJson, StoredJson),
                (
                    String,
                    DateTime<Utc>,
                    Option<DateTime<Utc>>,
                    String,
                    Option<String>,
                ),
            );
            let mut query = c::campaigns
                .inner_join(integrations::table)
                .order((integrations::name, c::external_id))
                .select((
                    integrations::name,
                    (c::id, c::external_id, c::name, c::status, c::visibility),
                    (
                        c::revenue,
                        c::payout,
                        c::currency,
                        c::tracking_url,
                        c::category,
                    ),
                    (c::countries, c::caps, c::import_caps),
                    (
                        c::content_hash,
                        c::changed_at,
                        c::removed_at,
                        c::payout_kind,
                        c::removed_as,
                    ),
                ))
                .into_boxed();
            if let Some(name) = integration {
                query = query.filter(integrations::name.eq(name.to_string()));
            }
            if let Some(needle) = needle {
                // The id exactly, or the name containing the text (any case).
                let escaped = needle
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                query = query.filter(
                    c::external_id
                        .eq(needle.to_string())
                        .or(super::rows::lower(c::name)
                            .like(format!("%{}%", escaped.to_lowercase()))
                            .escape('\\')),
                );
            }
            if let Some((offset, limit)) = page {
                query = query.offset(offset).limit(limit);
            }
            let rows: Vec<Row> = query.load(conn)?;
            let json = |t: StoredJson| {
                serde_json::from_str(stored_json_text(&t)).unwrap_or(serde_json::Value::Null)
            };
            Ok(rows
                .into_iter()
                .map(|(integration, a, b, j, h)| {
                    (
                        integration,
                        CampaignRecord {
                            id: a.0,
                            external_id: a.1,
                            name: a.2,
                            status: a.3,
                            visibility: a.4,
                            revenue: stored_decimal(b.0),
                            payout: stored_decimal(b.1),
                            currency: b.2,
                            tracking_url: b.3,
                            category: b.4,
                            countries: json(j.0),
                            caps: json(j.1),
                            import_caps: json(j.2),
                            content_hash: h.0,
                            changed_at: h.1,
                            removed_at: h.2,
                            payout_kind: h.3,
                            removed_as: h.4,
                        },
                    )
                })
                .collect())
        }

        /// The watched columns (see [`super::feed`]) of these campaigns.
        fn watched_rows(
            conn: &mut $Conn,
            ids: &[i64],
        ) -> Result<Vec<super::feed::WatchedRow>, StoreError> {
            let mut rows = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(5_000) {
                // Ids are integers: written into the statement, no binds to count.
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let sql = format!(
                    "SELECT {} FROM campaigns WHERE id IN ({})",
                    super::feed::select_list(JSON_ARRAY_FN),
                    list.join(",")
                );
                rows.extend(diesel::sql_query(sql).load::<super::feed::WatchedRow>(conn)?);
            }
            Ok(rows)
        }

        /// Removes campaigns (see [`remove_campaigns`]) and notes in `feed`
        /// what each became.
        fn remove_tracked(
            conn: &mut $Conn,
            feed: &mut super::feed::PendingFeed,
            integration_id: i64,
            ids: &[i64],
            removed_as: &str,
            pause: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let before = watched_rows(conn, ids)?;
            remove_campaigns(conn, ids, removed_as, pause, now)?;
            let after = watched_rows(conn, ids)?;
            feed.note_rewrites(
                integration_id,
                |_| (super::feed::ChangeKind::Removed, None),
                &before,
                &after,
                now,
            );
            stage_changes(conn, feed)
        }

        /// Rewrites the columns `allowed` lets an update write (see
        /// `rows::update_set`) but those the campaign keeps (its offer's value
        /// could not be read: `Campaign::kept_columns`), with the restore or
        /// upstream-pause status rules, and the publisher payouts when the
        /// payout is rewritten.
        fn update_campaigns(
            conn: &mut $Conn,
            integration_id: i64,
            now: DateTime<Utc>,
            updates: &[Update<'_>],
            allowed: &UpdateColumns,
        ) -> Result<(), StoreError> {
            let all = update_set(allowed);
            for update in updates {
                let set: Vec<&str> = all
                    .iter()
                    .copied()
                    .filter(|column| !update.campaign.keeps(column))
                    .collect();
                let rewrite_publisher_payouts = set.contains(&"payout");
                let mut sql = format!("UPDATE campaigns SET changed_at = {}", placeholder(1));
                for (i, column) in set.iter().enumerate() {
                    sql.push_str(&format!(", {column} = {}", placeholder(i + 2)));
                }
                if update.restore {
                    sql.push_str(restore_sql(&set, allowed, update.campaign));
                } else {
                    sql.push_str(upstream_pause_sql(&set, allowed, update.campaign));
                }
                sql.push_str(OWN_WRITE_SQL);
                sql.push_str(&format!(" WHERE id = {}", placeholder(set.len() + 2)));
                let mut q = bind_time(sql_query(sql).into_boxed(), now);
                for column in &set {
                    q = bind_column(q, column, update.campaign);
                }
                bind_id(q, update.id).execute(conn)?;
                if rewrite_publisher_payouts {
                    use publisher_payouts::dsl as pp;
                    diesel::delete(
                        pp::publisher_payouts
                            .filter(pp::integration_id.eq(integration_id))
                            .filter(pp::external_id.eq(&update.campaign.external_id)),
                    )
                    .execute(conn)?;
                    let rows: Vec<_> = publisher_rows(integration_id, update.campaign).collect();
                    if !rows.is_empty() {
                        diesel::insert_into(pp::publisher_payouts)
                            .values(&rows)
                            .execute(conn)?;
                    }
                }
            }
            Ok(())
        }

        /// Rewrites only the bookkeeping ([`BOOKKEEPING_SET`]) and clears
        /// the drift mark.
        fn refresh_bookkeeping(
            conn: &mut $Conn,
            campaigns: &[(i64, &Campaign)],
        ) -> Result<(), StoreError> {
            let mut sql = String::from("UPDATE campaigns SET drifted = FALSE");
            for (i, column) in BOOKKEEPING_SET.iter().enumerate() {
                sql.push_str(&format!(", {column} = {}", placeholder(i + 1)));
            }
            sql.push_str(&format!(
                " WHERE id = {}",
                placeholder(BOOKKEEPING_SET.len() + 1)
            ));
            for (id, campaign) in campaigns {
                let mut q = sql_query(sql.as_str()).into_boxed();
                for column in BOOKKEEPING_SET {
                    q = bind_column(q, column, campaign);
                }
                bind_id(q, *id).execute(conn)?;
            }
            Ok(())
        }

        /// The rows of these campaigns as compared with their desired state.
        fn stored_rows(conn: &mut $Conn, ids: &[i64]) -> Result<Vec<super::StoredRow>, StoreError> {
            let mut rows = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(5_000) {
                // Ids are integers: written into the statement, no binds to count.
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                let sql = format!(
                    "SELECT {}, status_before_pause, drifted, content_hash, raw_hash \
                     FROM campaigns WHERE id IN ({})",
                    super::feed::select_list(JSON_ARRAY_FN),
                    list.join(",")
                );
                rows.extend(
                    diesel::sql_query(sql)
                        .load::<super::feed::ComparedRow>(conn)?
                        .into_iter()
                        .map(super::feed::ComparedRow::into_stored_row),
                );
            }
            Ok(rows)
        }

        fn record_applied_policy(
            conn: &mut $Conn,
            integration_id: i64,
            fingerprint: &str,
        ) -> Result<(), StoreError> {
            use integrations::dsl as i;
            diesel::update(i::integrations.find(integration_id))
                .set(i::applied_policy.eq(fingerprint))
                .execute(conn)?;
            Ok(())
        }

        fn applied_policy(
            conn: &mut $Conn,
            integration_id: i64,
        ) -> Result<Option<String>, StoreError> {
            use integrations::dsl as i;
            Ok(i::integrations
                .find(integration_id)
                .select(i::applied_policy)
                .first::<Option<String>>(conn)
                .optional()?
                .flatten())
        }

        fn record_warnings(
            conn: &mut $Conn,
            run: RunId,
            warnings: &[(String, String)],
        ) -> Result<(), StoreError> {
            use sync_warnings::dsl as w;
            for chunk in warnings.chunks(5_000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|(id, message)| {
                        (
                            w::run_id.eq(run.0),
                            w::external_id.eq(id),
                            w::message.eq(message),
                        )
                    })
                    .collect();
                diesel::insert_into(w::sync_warnings)
                    .values(&rows)
                    .execute(conn)?;
            }
            Ok(())
        }

        fn run_warnings(
            conn: &mut $Conn,
            run: RunId,
            offset: i64,
            limit: i64,
        ) -> Result<Vec<(String, String)>, StoreError> {
            use sync_warnings::dsl as w;
            Ok(w::sync_warnings
                .filter(w::run_id.eq(run.0))
                .order((w::external_id, w::message))
                .select((w::external_id, w::message))
                .offset(offset)
                .limit(limit)
                .load(conn)?)
        }

        /// Runs `write` (the updates of one page) and notes in `feed` what
        /// each updated campaign became: read before and after, so that the
        /// feed says what the row really is now, whatever the policy kept.
        fn update_tracked(
            conn: &mut $Conn,
            feed: &mut super::feed::PendingFeed,
            integration_id: i64,
            updates: &[Update<'_>],
            now: DateTime<Utc>,
            write: impl FnOnce(&mut $Conn) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
            let before = watched_rows(conn, &ids)?;
            write(conn)?;
            let after = watched_rows(conn, &ids)?;
            let by_id: std::collections::HashMap<i64, &Update<'_>> =
                updates.iter().map(|u| (u.id, u)).collect();
            let kind = |id| {
                let update = by_id.get(&id);
                let kind = if update.is_some_and(|u| u.restore) {
                    super::feed::ChangeKind::Restored
                } else {
                    super::feed::ChangeKind::Updated
                };
                (kind, update.map(|u| u.cause.to_string()))
            };
            feed.note_rewrites(integration_id, kind, &before, &after, now);
            stage_changes(conn, feed)
        }

        /// Moves the changes noted so far into the connection's temporary
        /// table (created with the transaction's first change, gone with
        /// its rollback): a run that updates 10,000 campaigns holds none
        /// of their changes in memory.
        fn stage_changes(
            conn: &mut $Conn,
            feed: &mut super::feed::PendingFeed,
        ) -> Result<(), StoreError> {
            if feed.changes.is_empty() {
                return Ok(());
            }
            if !feed.staged {
                diesel::sql_query(PENDING_CHANGES_TABLE).execute(conn)?;
                feed.staged = true;
            }
            use pending_changes::dsl as p;
            // 7 parameters a row: well under either backend's limit per statement.
            for chunk in std::mem::take(&mut feed.changes).chunks(2_000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|change| {
                        (
                            p::integration_id.eq(change.integration_id),
                            p::campaign_id.eq(change.campaign_id),
                            p::external_id.eq(&change.external_id),
                            p::kind.eq(change.kind.as_str()),
                            p::status.eq(&change.status),
                            p::changed_columns.eq(feed_json(&change.columns)),
                            p::changed_at.eq(change.changed_at),
                            p::cause.eq(change.cause.as_deref()),
                        )
                    })
                    .collect();
                diesel::insert_into(p::pending_changes)
                    .values(&rows)
                    .execute(conn)?;
            }
            Ok(())
        }

        /// Appends a transaction's changes to the feed. Called last in the
        /// transaction: the feed lock it takes (Postgres) is held until the
        /// commit, so no transaction can commit lower positions after these
        /// became visible.
        fn flush_feed(
            conn: &mut $Conn,
            feed: &mut super::feed::PendingFeed,
            run: Option<RunId>,
        ) -> Result<(), StoreError> {
            if feed.is_empty() {
                return Ok(());
            }
            lock_feed(conn)?;
            use campaign_changes::dsl as f;
            use campaigns::dsl as c;
            use diesel::IntoSql;
            let run_id = run.map(|r| r.0);
            let columns = (
                f::integration_id,
                f::run_id,
                f::campaign_id,
                f::external_id,
                f::kind,
                f::status,
                f::changed_columns,
                f::changed_at,
                f::cause,
            );
            for (integration_id, at) in std::mem::take(&mut feed.created) {
                let created = c::campaigns
                    .filter(c::integration_id.eq(integration_id))
                    .filter(c::first_seen_at.eq(at))
                    .select((
                        c::integration_id,
                        run_id.into_sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(),
                        c::id,
                        c::external_id,
                        "created".into_sql::<diesel::sql_types::Text>(),
                        c::status,
                        feed_json("[]").into_sql::<FeedJsonSql>(),
                        c::first_seen_at,
                        None::<String>
                            .into_sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(),
                    ))
                    .order(c::id);
                diesel::insert_into(f::campaign_changes)
                    .values(created)
                    .into_columns(columns)
                    .execute(conn)?;
            }
            stage_changes(conn, feed)?;
            if std::mem::take(&mut feed.staged) {
                use pending_changes::dsl as p;
                let staged = p::pending_changes
                    .select((
                        p::integration_id,
                        run_id.into_sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(),
                        p::campaign_id,
                        p::external_id,
                        p::kind,
                        p::status,
                        p::changed_columns,
                        p::changed_at,
                        p::cause,
                    ))
                    .order(p::seq);
                diesel::insert_into(f::campaign_changes)
                    .values(staged)
                    .into_columns(columns)
                    .execute(conn)?;
                diesel::delete(p::pending_changes).execute(conn)?;
            }
            notify_feed(conn)
        }

        /// The feed after `since`, oldest first.
        fn changes(
            conn: &mut $Conn,
            since: i64,
            integration: Option<&str>,
            limit: i64,
        ) -> Result<Vec<super::ChangeRecord>, StoreError> {
            read_feed(conn, since, integration, None, 0, limit)
        }

        /// A page of the changes one run made, oldest first, and how many
        /// it made in all. Read through the integration's index (the run's
        /// integration is known), so a run's page never scans the feed.
        fn run_changes(
            conn: &mut $Conn,
            run: RunId,
            offset: i64,
            limit: i64,
        ) -> Result<(Vec<super::ChangeRecord>, i64), StoreError> {
            use campaign_changes::dsl as f;
            let integration: Option<i64> = sync_runs::table
                .filter(sync_runs::id.eq(run.0))
                .select(sync_runs::integration_id)
                .first(conn)
                .optional()?;
            let Some(integration) = integration else {
                return Ok((Vec::new(), 0));
            };
            let total: i64 = f::campaign_changes
                .filter(f::integration_id.eq(integration))
                .filter(f::run_id.eq(run.0))
                .count()
                .get_result(conn)?;
            let page = read_feed(conn, 0, None, Some((integration, run.0)), offset, limit)?;
            Ok((page, total))
        }

        /// The feed after `since`: of one integration (by name) or all, or
        /// of one run (its integration's id and the run's).
        fn read_feed(
            conn: &mut $Conn,
            since: i64,
            integration: Option<&str>,
            run: Option<(i64, i64)>,
            offset: i64,
            limit: i64,
        ) -> Result<Vec<super::ChangeRecord>, StoreError> {
            use campaign_changes::dsl as f;
            use integrations::dsl as i;
            let mut query = f::campaign_changes
                .inner_join(i::integrations)
                .filter(f::position.gt(since))
                .order(f::position)
                .offset(offset)
                .limit(limit)
                .select((
                    (
                        f::position,
                        i::name,
                        f::run_id,
                        f::campaign_id,
                        f::external_id,
                    ),
                    (
                        f::kind,
                        f::status,
                        f::changed_columns,
                        f::changed_at,
                        f::cause,
                    ),
                ))
                .into_boxed();
            if let Some(name) = integration {
                query = query.filter(i::name.eq(name.to_string()));
            }
            if let Some((integration, run)) = run {
                query = query
                    .filter(f::integration_id.eq(integration))
                    .filter(f::run_id.eq(run));
            }
            type Row = (
                (i64, String, Option<i64>, i64, String),
                (String, String, StoredJson, DateTime<Utc>, Option<String>),
            );
            let rows: Vec<Row> = query.load(conn)?;
            Ok(rows
                .into_iter()
                .map(
                    |((position, integration, run_id, campaign_id, external_id), rest)| {
                        let (kind, status, columns, changed_at, cause) = rest;
                        super::ChangeRecord {
                            position,
                            integration,
                            run_id,
                            campaign_id,
                            external_id,
                            kind: super::feed::ChangeKind::parse(&kind)
                                .unwrap_or(super::feed::ChangeKind::Updated),
                            status,
                            columns: serde_json::from_str(stored_json_text(&columns))
                                .unwrap_or_default(),
                            changed_at,
                            cause,
                        }
                    },
                )
                .collect())
        }

        fn prune_changes(conn: &mut $Conn, before: DateTime<Utc>) -> Result<usize, StoreError> {
            use campaign_changes::dsl as f;
            Ok(
                diesel::delete(f::campaign_changes.filter(f::changed_at.lt(before)))
                    .execute(conn)?,
            )
        }

        fn record_skips(conn: &mut $Conn, run: RunId, skips: &[Skip]) -> Result<(), StoreError> {
            // 4 parameters a row: well under either backend's limit per statement.
            for chunk in skips.chunks(5_000) {
                let rows: Vec<NewSkip<'_>> = chunk
                    .iter()
                    .map(|s| NewSkip {
                        run_id: run.0,
                        external_id: s.external_id.as_deref(),
                        reason: s.reason.as_str(),
                        detail: &s.detail,
                    })
                    .collect();
                diesel::insert_into(sync_skips::table)
                    .values(&rows)
                    .execute(conn)?;
            }
            Ok(())
        }

        fn write_counts(
            conn: &mut $Conn,
            run: RunId,
            counts: &RunCounts,
            status: &str,
            error: Option<&str>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            use sync_runs::dsl as r;
            diesel::update(r::sync_runs.find(run.0))
                .set((
                    r::status.eq(status),
                    r::finished_at.eq(now),
                    r::error.eq(error),
                    r::pages.eq(count(counts.pages)),
                    r::fetched.eq(count(counts.fetched)),
                    r::created.eq(count(counts.created)),
                    r::updated.eq(count(counts.updated)),
                    r::unchanged.eq(count(counts.unchanged)),
                    r::skipped.eq(count(counts.skipped)),
                    r::removed.eq(count(counts.removed)),
                    r::restored.eq(count(counts.restored)),
                    r::filtered.eq(count(counts.filtered)),
                    r::drift_corrected.eq(count(counts.drift_corrected)),
                    r::warnings.eq(count(counts.warnings)),
                ))
                .execute(conn)?;
            Ok(())
        }

        /// Marks the run succeeded and the integration's last success.
        fn finish_run(
            conn: &mut $Conn,
            run: RunId,
            integration_id: i64,
            counts: &RunCounts,
            accepted_removals: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            write_counts(conn, run, counts, "succeeded", None, now)?;
            {
                use sync_runs::dsl as r;
                diesel::update(r::sync_runs.find(run.0))
                    .set((
                        r::listed.eq(Some(count(counts.listed))),
                        r::accepted_removals.eq(accepted_removals),
                    ))
                    .execute(conn)?;
            }
            use integrations::dsl as i;
            diesel::update(i::integrations.find(integration_id))
                .set((
                    i::last_success_at.eq(now),
                    i::last_error.eq(None::<String>),
                    i::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        }

        /// The most offers listed in a successful run since `since`, not
        /// counting runs before the last one whose removals were accepted.
        fn listed_high_water(
            conn: &mut $Conn,
            integration_id: i64,
            since: DateTime<Utc>,
        ) -> Result<Option<u32>, StoreError> {
            use sync_runs::dsl as r;
            let succeeded = r::integration_id
                .eq(integration_id)
                .and(r::status.eq("succeeded"));
            let accepted: Option<i64> = r::sync_runs
                .filter(succeeded.and(r::accepted_removals.eq(true)))
                .select(diesel::dsl::max(r::id))
                .first(conn)?;
            let high: Option<i32> = r::sync_runs
                .filter(succeeded)
                .filter(r::finished_at.ge(since))
                .filter(r::id.ge(accepted.unwrap_or(0)))
                .select(diesel::dsl::max(r::listed))
                .first(conn)?;
            Ok(high.map(|n| n.max(0) as u32))
        }

        fn fail_run(
            conn: &mut $Conn,
            run: RunId,
            integration_id: i64,
            counts: &RunCounts,
            error: &str,
        ) -> Result<(), StoreError> {
            write_counts(conn, run, counts, "failed", Some(error), Utc::now())?;
            use integrations::dsl as i;
            diesel::update(i::integrations.find(integration_id))
                .set(i::last_error.eq(error))
                .execute(conn)?;
            Ok(())
        }

        /// The columns of a [`RunRow`](super::rows::RunRow).
        type RunSelection = (
            sync_runs::id,
            integrations::name,
            sync_runs::trigger,
            sync_runs::started_at,
            sync_runs::finished_at,
            sync_runs::status,
            (
                sync_runs::pages,
                sync_runs::fetched,
                sync_runs::created,
                sync_runs::updated,
                sync_runs::unchanged,
                sync_runs::skipped,
                sync_runs::removed,
                sync_runs::restored,
                sync_runs::filtered,
                sync_runs::drift_corrected,
                sync_runs::warnings,
            ),
            sync_runs::error,
        );

        fn run_columns() -> RunSelection {
            use sync_runs::dsl as r;
            (
                r::id,
                integrations::name,
                r::trigger,
                r::started_at,
                r::finished_at,
                r::status,
                (
                    r::pages,
                    r::fetched,
                    r::created,
                    r::updated,
                    r::unchanged,
                    r::skipped,
                    r::removed,
                    r::restored,
                    r::filtered,
                    r::drift_corrected,
                    r::warnings,
                ),
                r::error,
            )
        }

        fn recent_runs(
            conn: &mut $Conn,
            integration: &str,
            limit: i64,
        ) -> Result<Vec<RunRecord>, StoreError> {
            let rows: Vec<RunRow> = sync_runs::table
                .inner_join(integrations::table)
                .filter(integrations::name.eq(integration))
                .order(sync_runs::id.desc())
                .limit(limit)
                .select(run_columns())
                .load(conn)?;
            Ok(rows.into_iter().map(run_record).collect())
        }

        fn find_run(conn: &mut $Conn, run: RunId) -> Result<Option<RunRecord>, StoreError> {
            let row: Option<RunRow> = sync_runs::table
                .inner_join(integrations::table)
                .filter(sync_runs::id.eq(run.0))
                .select(run_columns())
                .first(conn)
                .optional()?;
            Ok(row.map(run_record))
        }

        /// A run's skipped offers by reason and id: those of one reason, or
        /// all; a page of them (`offset`, `limit`), or all.
        fn run_skips(
            conn: &mut $Conn,
            run: RunId,
            reason: Option<&str>,
            offset: i64,
            limit: Option<i64>,
        ) -> Result<Vec<SkipRecord>, StoreError> {
            use sync_skips::dsl as s;
            let mut query = s::sync_skips
                .filter(s::run_id.eq(run.0))
                .select((s::external_id, s::reason, s::detail))
                .order((s::reason, s::external_id))
                .offset(offset)
                .into_boxed();
            if let Some(reason) = reason {
                query = query.filter(s::reason.eq(reason.to_string()));
            }
            // SQLite takes no OFFSET without a LIMIT.
            query = query.limit(limit.unwrap_or(i64::MAX));
            let rows: Vec<(Option<String>, String, String)> = query.load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(external_id, reason, detail)| SkipRecord {
                    external_id,
                    reason,
                    detail,
                })
                .collect())
        }

        /// How many offers a run skipped for each reason, most first.
        fn skip_reasons(conn: &mut $Conn, run: RunId) -> Result<Vec<(String, i64)>, StoreError> {
            use sync_skips::dsl as s;
            let mut counts: Vec<(String, i64)> = s::sync_skips
                .filter(s::run_id.eq(run.0))
                .group_by(s::reason)
                .select((s::reason, diesel::dsl::count_star()))
                .load(conn)?;
            counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(counts)
        }

        fn claim_tick(
            conn: &mut $Conn,
            integration: &str,
            tick: DateTime<Utc>,
            by: &str,
        ) -> Result<bool, StoreError> {
            use schedule_claims::dsl as s;
            let inserted = diesel::insert_into(s::schedule_claims)
                .values((
                    s::integration.eq(integration),
                    s::tick.eq(tick),
                    s::claimed_by.eq(by),
                    s::claimed_at.eq(Utc::now()),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(inserted == 1)
        }

        fn finish_tick(
            conn: &mut $Conn,
            integration: &str,
            tick: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            use schedule_claims::dsl as s;
            diesel::update(s::schedule_claims.find((integration, tick)))
                .set(s::finished_at.eq(Utc::now()))
                .execute(conn)?;
            Ok(())
        }

        fn reclaim_ticks(
            conn: &mut $Conn,
            by: &str,
            stale_before: DateTime<Utc>,
        ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
            use schedule_claims::dsl as s;
            let stale = || s::finished_at.is_null().and(s::claimed_at.lt(stale_before));
            let candidates: Vec<(String, DateTime<Utc>)> = s::schedule_claims
                .filter(stale())
                .select((s::integration, s::tick))
                .order(s::tick)
                .load(conn)?;
            let mut taken = Vec::new();
            for (integration, tick) in candidates {
                // The filter again: of several daemons, one takes it over.
                let updated = diesel::update(
                    s::schedule_claims
                        .find((integration.as_str(), tick))
                        .filter(stale()),
                )
                .set((s::claimed_by.eq(by), s::claimed_at.eq(Utc::now())))
                .execute(conn)?;
                if updated == 1 {
                    taken.push((integration, tick));
                }
            }
            Ok(taken)
        }

        fn has_open_tick(conn: &mut $Conn, integration: &str) -> Result<bool, StoreError> {
            use schedule_claims::dsl as s;
            let open: i64 = s::schedule_claims
                .filter(s::integration.eq(integration).and(s::finished_at.is_null()))
                .count()
                .get_result(conn)?;
            Ok(open > 0)
        }

        fn keep_claims(conn: &mut $Conn, by: &str) -> Result<(), StoreError> {
            use refresh_requests::dsl as r;
            use schedule_claims::dsl as s;
            let now = Utc::now();
            diesel::update(
                s::schedule_claims.filter(s::claimed_by.eq(by).and(s::finished_at.is_null())),
            )
            .set(s::claimed_at.eq(now))
            .execute(conn)?;
            diesel::update(
                r::refresh_requests.filter(r::claimed_by.eq(by).and(r::finished_at.is_null())),
            )
            .set(r::claimed_at.eq(now))
            .execute(conn)?;
            Ok(())
        }

        fn prune_ticks(conn: &mut $Conn, before: DateTime<Utc>) -> Result<usize, StoreError> {
            use schedule_claims::dsl as s;
            Ok(diesel::delete(
                s::schedule_claims.filter(s::tick.lt(before).and(s::finished_at.is_not_null())),
            )
            .execute(conn)?)
        }

        fn claim_spec(
            conn: &mut $Conn,
            integration: &str,
            spec_hash: &str,
        ) -> Result<bool, StoreError> {
            // The same statement on both backends: a row inserted or changed
            // counts 1, the same hash again 0.
            let moved = diesel::sql_query(
                "INSERT INTO spec_claims (integration, spec_hash) VALUES ($1, $2) \
                 ON CONFLICT (integration) DO UPDATE SET spec_hash = excluded.spec_hash \
                 WHERE spec_claims.spec_hash <> excluded.spec_hash",
            )
            .bind::<diesel::sql_types::Text, _>(integration)
            .bind::<diesel::sql_types::Text, _>(spec_hash)
            .execute(conn)?;
            Ok(moved == 1)
        }

        fn request_refresh(
            conn: &mut $Conn,
            integration: &str,
            by: &str,
        ) -> Result<Option<i64>, StoreError> {
            let Some(id) = integration_id(conn, integration)? else {
                return Ok(None);
            };
            use refresh_requests::dsl as r;
            let request = diesel::insert_into(r::refresh_requests)
                .values((
                    r::integration_id.eq(id),
                    r::requested_at.eq(Utc::now()),
                    r::requested_by.eq(by),
                ))
                .returning(r::id)
                .get_result(conn)?;
            Ok(Some(request))
        }

        fn claim_refreshes(
            conn: &mut $Conn,
            by: &str,
            stale_before: DateTime<Utc>,
        ) -> Result<Vec<(i64, String)>, StoreError> {
            use refresh_requests::dsl as r;
            // Unclaimed, or claimed by a daemon that died before finishing it.
            let claimable = || {
                r::finished_at
                    .is_null()
                    .and(r::claimed_at.is_null().or(r::claimed_at.lt(stale_before)))
            };
            let candidates: Vec<(i64, String)> = r::refresh_requests
                .inner_join(integrations::table)
                .filter(claimable())
                .select((r::id, integrations::name))
                .order(r::id)
                .limit(100)
                .load(conn)?;
            let mut claimed = Vec::new();
            for (id, name) in candidates {
                // The filter again: of several daemons, one updates the row.
                let updated = diesel::update(r::refresh_requests.find(id).filter(claimable()))
                    .set((r::claimed_at.eq(Utc::now()), r::claimed_by.eq(by)))
                    .execute(conn)?;
                if updated == 1 {
                    claimed.push((id, name));
                }
            }
            Ok(claimed)
        }

        fn finish_refresh(
            conn: &mut $Conn,
            request: i64,
            run: Option<RunId>,
            outcome: &str,
        ) -> Result<(), StoreError> {
            use refresh_requests::dsl as r;
            diesel::update(r::refresh_requests.find(request))
                .set((
                    r::finished_at.eq(Utc::now()),
                    r::run_id.eq(run.map(|r| r.0)),
                    r::outcome.eq(outcome),
                ))
                .execute(conn)?;
            Ok(())
        }

        fn refresh_outcome(
            conn: &mut $Conn,
            request: i64,
        ) -> Result<Option<RefreshOutcome>, StoreError> {
            use refresh_requests::dsl as r;
            type Row = (Option<DateTime<Utc>>, Option<i64>, Option<String>, bool);
            let row: Option<Row> = r::refresh_requests
                .find(request)
                .select((r::finished_at, r::run_id, r::outcome, r::coalesced))
                .first(conn)
                .optional()?;
            Ok(row.and_then(|(finished, run, outcome, coalesced)| {
                finished.map(|_| RefreshOutcome {
                    run,
                    outcome: outcome.unwrap_or_default(),
                    coalesced,
                })
            }))
        }

        fn coalesce_refresh(
            conn: &mut $Conn,
            request: i64,
        ) -> Result<Option<RefreshOutcome>, StoreError> {
            use refresh_requests::dsl as r;
            use sync_runs::dsl as s;
            let Some((integration_id, requested_at, finished_at)) = r::refresh_requests
                .find(request)
                .select((r::integration_id, r::requested_at, r::finished_at))
                .first::<(i64, DateTime<Utc>, Option<DateTime<Utc>>)>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            if finished_at.is_some() {
                // Answered already (by a daemon that took the claim over).
                return refresh_outcome(conn, request);
            }
            // Only a run that began after the request fetched what the
            // request asks for (a run fetches once registered, never
            // before); one still going, or cut short (interrupted), answers
            // nothing yet.
            let run: Option<(i64, String)> = s::sync_runs
                .filter(s::integration_id.eq(integration_id))
                .filter(s::started_at.ge(requested_at))
                .filter(s::status.ne("running"))
                .filter(s::error.is_null().or(s::error.ne(INTERRUPTED)))
                .order(s::id)
                .select((s::id, s::status))
                .first(conn)
                .optional()?;
            let Some((run, status)) = run else {
                return Ok(None);
            };
            let outcome = if status == "succeeded" {
                crate::store::REFRESH_SUCCEEDED
            } else {
                crate::store::REFRESH_FAILED
            };
            diesel::update(
                r::refresh_requests
                    .find(request)
                    .filter(r::finished_at.is_null()),
            )
            .set((
                r::finished_at.eq(Utc::now()),
                r::run_id.eq(run),
                r::outcome.eq(outcome),
                r::coalesced.eq(true),
            ))
            .execute(conn)?;
            refresh_outcome(conn, request)
        }

        fn refresh_claimed(conn: &mut $Conn, request: i64) -> Result<bool, StoreError> {
            use refresh_requests::dsl as r;
            let claimed: Option<Option<DateTime<Utc>>> = r::refresh_requests
                .find(request)
                .select(r::claimed_at)
                .first(conn)
                .optional()?;
            Ok(matches!(claimed, Some(Some(_))))
        }

        fn live_integrations(conn: &mut $Conn) -> Result<Vec<LiveIntegration>, StoreError> {
            use integrations::dsl as i;
            let rows: Vec<(String, String, String)> = i::integrations
                .filter(i::state.ne("deleted"))
                .select((i::name, i::source_file, i::spec))
                .order(i::name)
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(name, source_file, spec)| LiveIntegration {
                    name,
                    source_file,
                    spec,
                })
                .collect())
        }

        fn integration_state(conn: &mut $Conn, name: &str) -> Result<Option<String>, StoreError> {
            use integrations::dsl as i;
            Ok(i::integrations
                .filter(i::name.eq(name))
                .select(i::state)
                .first(conn)
                .optional()?)
        }

        /// A deleted integration stays deleted (only `undelete_integration`
        /// brings it back).
        fn set_integration_state(
            conn: &mut $Conn,
            integration: &str,
            state: &str,
        ) -> Result<(), StoreError> {
            use integrations::dsl as i;
            let updated = diesel::update(
                i::integrations
                    .filter(i::name.eq(integration))
                    .filter(i::state.ne("deleted").or(i::state.eq(state))),
            )
            .set((i::state.eq(state), i::updated_at.eq(Utc::now())))
            .execute(conn)?;
            if updated == 0 {
                let deleted: Option<String> = i::integrations
                    .filter(i::name.eq(integration))
                    .filter(i::state.eq("deleted"))
                    .select(i::source_file)
                    .first(conn)
                    .optional()?;
                if let Some(file) = deleted {
                    return Err(StoreError::IntegrationDeleted {
                        name: integration.to_string(),
                        file,
                    });
                }
            }
            Ok(())
        }

        fn undelete_integration(
            conn: &mut $Conn,
            integration: &str,
            state: &str,
        ) -> Result<bool, StoreError> {
            use integrations::dsl as i;
            let updated = diesel::update(
                i::integrations
                    .filter(i::name.eq(integration))
                    .filter(i::state.eq("deleted")),
            )
            .set((
                i::state.eq(state),
                i::attempted_spec_hash.eq(None::<String>),
                i::last_error.eq(None::<String>),
                i::updated_at.eq(Utc::now()),
            ))
            .execute(conn)?;
            Ok(updated > 0)
        }

        fn record_manifest_problem(
            conn: &mut $Conn,
            integration: &str,
            attempted_spec_hash: Option<&str>,
            error: Option<&str>,
        ) -> Result<(), StoreError> {
            use integrations::dsl as i;
            diesel::update(i::integrations.filter(i::name.eq(integration)))
                .set((
                    i::attempted_spec_hash.eq(attempted_spec_hash),
                    i::last_error.eq(error),
                ))
                .execute(conn)?;
            Ok(())
        }

        fn retire_integration(
            conn: &mut $Conn,
            integration: &str,
            pause: bool,
        ) -> Result<u32, StoreError> {
            let Some(id) = integration_id(conn, integration)? else {
                return Ok(0);
            };
            conn.transaction::<u32, StoreError, _>(|conn| {
                use campaigns::dsl as c;
                use integrations::dsl as i;
                let now = Utc::now();
                diesel::update(i::integrations.find(id))
                    .set((i::state.eq("deleted"), i::updated_at.eq(now)))
                    .execute(conn)?;
                let live: Vec<i64> = c::campaigns
                    .filter(c::integration_id.eq(id))
                    .filter(c::removed_at.is_null())
                    .select(c::id)
                    .load(conn)?;
                let mut feed = super::feed::PendingFeed::default();
                remove_tracked(conn, &mut feed, id, &live, "retired", pause, now)?;
                flush_feed(conn, &mut feed, None)?;
                // Restoring the manifest later is a change that runs at once.
                diesel::sql_query("DELETE FROM spec_claims WHERE integration = $1")
                    .bind::<diesel::sql_types::Text, _>(integration)
                    .execute(conn)?;
                Ok(u32::try_from(live.len()).unwrap_or(u32::MAX))
            })
        }

        /// Every integration's name, state and failed runs since its last
        /// success, by name, in one query (the overview's summary and its
        /// pages, however many integrations there are).
        fn integration_health(conn: &mut $Conn) -> Result<Vec<super::IntegrationHealth>, StoreError> {
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                name: String,
                #[diesel(sql_type = diesel::sql_types::Text)]
                state: String,
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                failures: i64,
            }
            let rows: Vec<Row> = diesel::sql_query(
                "SELECT i.name, i.state, \
                   (SELECT COUNT(*) FROM sync_runs r WHERE r.integration_id = i.id AND r.status = 'failed' \
                      AND r.id > COALESCE((SELECT MAX(s.id) FROM sync_runs s \
                        WHERE s.integration_id = i.id AND s.status = 'succeeded'), 0)) AS failures \
                 FROM integrations i ORDER BY i.name",
            )
            .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|r| super::IntegrationHealth {
                    name: r.name,
                    state: r.state,
                    failures_in_a_row: u32::try_from(r.failures).unwrap_or(u32::MAX),
                })
                .collect())
        }

        fn status(conn: &mut $Conn) -> Result<Vec<IntegrationStatus>, StoreError> {
            status_rows(conn, None)
        }

        /// `status`, of every integration or of these (by name).
        fn status_rows(
            conn: &mut $Conn,
            names: Option<&[String]>,
        ) -> Result<Vec<IntegrationStatus>, StoreError> {
            use campaigns::dsl as c;
            use integrations::dsl as i;
            use sync_runs::dsl as r;
            type Row = (
                i64,
                String,
                String,
                String,
                String,
                Option<String>,
                Option<DateTime<Utc>>,
                Option<String>,
                String,
                String,
            );
            let mut query = i::integrations
                .select((
                    i::id,
                    i::name,
                    i::network,
                    i::state,
                    i::spec_hash,
                    i::last_error,
                    i::last_success_at,
                    i::attempted_spec_hash,
                    i::source_file,
                    i::spec,
                ))
                .order(i::name)
                .into_boxed();
            if let Some(names) = names {
                query = query.filter(i::name.eq_any(names.to_vec()));
            }
            let rows: Vec<Row> = query.load(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (
                    id,
                    name,
                    network,
                    state,
                    spec_hash,
                    last_error,
                    last_success_at,
                    attempted,
                    source_file,
                    spec,
                ) = row;
                let last_run = recent_runs(conn, &name, 1)?.into_iter().next();
                // The failed runs since the last success: how long and how
                // many times in a row it has been failing.
                let last_ok: Option<i64> = r::sync_runs
                    .filter(r::integration_id.eq(id))
                    .filter(r::status.eq("succeeded"))
                    .select(diesel::dsl::max(r::id))
                    .first(conn)?;
                let (failures, first_failed): (i64, Option<i64>) = r::sync_runs
                    .filter(r::integration_id.eq(id))
                    .filter(r::status.eq("failed"))
                    .filter(r::id.gt(last_ok.unwrap_or(0)))
                    .select((diesel::dsl::count_star(), diesel::dsl::min(r::id)))
                    .first(conn)?;
                let failing_since: Option<DateTime<Utc>> = match first_failed {
                    Some(run) => r::sync_runs
                        .filter(r::id.eq(run))
                        .select(r::started_at)
                        .first(conn)
                        .optional()?,
                    None => None,
                };
                let campaigns: i64 = c::campaigns
                    .filter(c::integration_id.eq(id))
                    .count()
                    .get_result(conn)?;
                let active_campaigns: i64 = c::campaigns
                    .filter(c::integration_id.eq(id))
                    .filter(c::status.eq("active"))
                    .filter(c::removed_at.is_null())
                    .count()
                    .get_result(conn)?;
                out.push(IntegrationStatus {
                    name,
                    network,
                    state,
                    spec_hash,
                    attempted_spec_hash: attempted,
                    last_error,
                    last_success_at,
                    last_run,
                    campaigns,
                    active_campaigns,
                    source_file,
                    spec,
                    failures_in_a_row: u32::try_from(failures).unwrap_or(u32::MAX),
                    failing_since,
                });
            }
            Ok(out)
        }
    };
}

pub(super) use shared_queries;

/// The `Store` methods that only hand their arguments to the shared queries,
/// expanded inside each backend's `impl Store` (whose `conn` they use).
/// The `Writes` methods that only delegate to the shared queries, for a
/// backend's writes type holding `conn: &mut Connection`.
macro_rules! shared_writes_methods {
    () => {
        fn update(
            &mut self,
            integration_id: i64,
            now: DateTime<Utc>,
            updates: &[Update<'_>],
            allowed: &UpdateColumns,
        ) -> Result<(), StoreError> {
            update_tracked(
                self.conn,
                &mut self.feed,
                integration_id,
                updates,
                now,
                |conn| update_campaigns(conn, integration_id, now, updates, allowed),
            )
        }

        fn refresh(&mut self, campaigns: &[(i64, &Campaign)]) -> Result<(), StoreError> {
            refresh_bookkeeping(self.conn, campaigns)
        }

        fn stored_rows(&mut self, ids: &[i64]) -> Result<Vec<super::StoredRow>, StoreError> {
            stored_rows(self.conn, ids)
        }

        fn record_warnings(
            &mut self,
            run: RunId,
            warnings: &[(String, String)],
        ) -> Result<(), StoreError> {
            record_warnings(self.conn, run, warnings)
        }

        fn record_applied_policy(
            &mut self,
            integration_id: i64,
            fingerprint: &str,
        ) -> Result<(), StoreError> {
            record_applied_policy(self.conn, integration_id, fingerprint)
        }

        fn remove(
            &mut self,
            integration_id: i64,
            ids: &[i64],
            removed_as: &'static str,
            pause: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            remove_tracked(
                self.conn,
                &mut self.feed,
                integration_id,
                ids,
                removed_as,
                pause,
                now,
            )
        }

        fn record_skips(&mut self, run: RunId, skips: &[Skip]) -> Result<(), StoreError> {
            record_skips(self.conn, run, skips)
        }

        fn record_outcomes(
            &mut self,
            integration_id: i64,
            revision: &str,
            outcomes: &[super::NewOutcome<'_>],
            forget: &[&str],
        ) -> Result<(), StoreError> {
            record_outcomes(self.conn, integration_id, revision, outcomes, forget)
        }

        fn prune_outcomes(
            &mut self,
            integration_id: i64,
            revision: &str,
        ) -> Result<(), StoreError> {
            prune_outcomes(self.conn, integration_id, revision)
        }

        fn finish_run(
            &mut self,
            run: RunId,
            integration_id: i64,
            counts: &RunCounts,
            accepted_removals: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            flush_feed(self.conn, &mut self.feed, Some(run))?;
            finish_run(
                self.conn,
                run,
                integration_id,
                counts,
                accepted_removals,
                now,
            )
        }

        fn finish_tick(
            &mut self,
            integration: &str,
            tick: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            finish_tick(self.conn, integration, tick)
        }
    };
}

macro_rules! shared_store_methods {
    () => {
        fn stored_outcomes(
            &mut self,
            integration_id: i64,
            revision: &str,
            each: &mut dyn FnMut(super::StoredOutcome),
        ) -> Result<bool, StoreError> {
            stored_outcomes(&mut self.conn, integration_id, revision, each)
        }

        fn campaigns(&mut self, integration: &str) -> Result<Vec<CampaignRecord>, StoreError> {
            Ok(
                campaign_records(&mut self.conn, Some(integration), None, None)?
                    .into_iter()
                    .map(|(_, record)| record)
                    .collect(),
            )
        }

        fn search_campaigns(
            &mut self,
            integration: Option<&str>,
            needle: &str,
            limit: i64,
        ) -> Result<Vec<(String, CampaignRecord)>, StoreError> {
            campaign_records(&mut self.conn, integration, Some(needle), Some((0, limit)))
        }

        fn campaigns_page(
            &mut self,
            integration: &str,
            offset: i64,
            limit: i64,
        ) -> Result<(Vec<CampaignRecord>, i64), StoreError> {
            let total: i64 = campaigns::table
                .inner_join(integrations::table)
                .filter(integrations::name.eq(integration))
                .count()
                .get_result(&mut self.conn)?;
            let page = campaign_records(
                &mut self.conn,
                Some(integration),
                None,
                Some((offset, limit)),
            )?;
            Ok((page.into_iter().map(|(_, c)| c).collect(), total))
        }

        fn listed_high_water(
            &mut self,
            integration_id: i64,
            since: DateTime<Utc>,
        ) -> Result<Option<u32>, StoreError> {
            listed_high_water(&mut self.conn, integration_id, since)
        }

        fn fail_run(
            &mut self,
            run: RunId,
            integration_id: i64,
            counts: &RunCounts,
            error: &str,
        ) -> Result<(), StoreError> {
            fail_run(&mut self.conn, run, integration_id, counts, error)
        }

        fn recent_runs(
            &mut self,
            integration: &str,
            limit: i64,
        ) -> Result<Vec<RunRecord>, StoreError> {
            recent_runs(&mut self.conn, integration, limit)
        }

        fn changes(
            &mut self,
            since: i64,
            integration: Option<&str>,
            limit: i64,
        ) -> Result<Vec<super::ChangeRecord>, StoreError> {
            changes(&mut self.conn, since, integration, limit)
        }

        fn prune_changes(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
            prune_changes(&mut self.conn, before)
        }

        fn run_changes(
            &mut self,
            run: RunId,
            offset: i64,
            limit: i64,
        ) -> Result<(Vec<super::ChangeRecord>, i64), StoreError> {
            run_changes(&mut self.conn, run, offset, limit)
        }

        fn integration_health(&mut self) -> Result<Vec<super::IntegrationHealth>, StoreError> {
            integration_health(&mut self.conn)
        }

        fn status_of(&mut self, names: &[String]) -> Result<Vec<IntegrationStatus>, StoreError> {
            status_rows(&mut self.conn, Some(names))
        }

        fn run(&mut self, run: RunId) -> Result<Option<RunRecord>, StoreError> {
            find_run(&mut self.conn, run)
        }

        fn stored_rows(&mut self, ids: &[i64]) -> Result<Vec<super::StoredRow>, StoreError> {
            stored_rows(&mut self.conn, ids)
        }

        fn applied_policy(&mut self, integration_id: i64) -> Result<Option<String>, StoreError> {
            applied_policy(&mut self.conn, integration_id)
        }

        fn run_warnings(
            &mut self,
            run: RunId,
            offset: i64,
            limit: i64,
        ) -> Result<Vec<(String, String)>, StoreError> {
            run_warnings(&mut self.conn, run, offset, limit)
        }

        fn run_skips(&mut self, run: RunId) -> Result<Vec<SkipRecord>, StoreError> {
            run_skips(&mut self.conn, run, None, 0, None)
        }

        fn run_skips_page(
            &mut self,
            run: RunId,
            reason: Option<&str>,
            offset: i64,
            limit: i64,
        ) -> Result<Vec<SkipRecord>, StoreError> {
            run_skips(&mut self.conn, run, reason, offset, Some(limit))
        }

        fn skip_reasons(&mut self, run: RunId) -> Result<Vec<(String, i64)>, StoreError> {
            skip_reasons(&mut self.conn, run)
        }

        fn status(&mut self) -> Result<Vec<IntegrationStatus>, StoreError> {
            status(&mut self.conn)
        }

        fn claim_tick(
            &mut self,
            integration: &str,
            tick: DateTime<Utc>,
            by: &str,
        ) -> Result<bool, StoreError> {
            claim_tick(&mut self.conn, integration, tick, by)
        }

        fn finish_tick(
            &mut self,
            integration: &str,
            tick: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            finish_tick(&mut self.conn, integration, tick)
        }

        fn reclaim_ticks(
            &mut self,
            by: &str,
            stale_before: DateTime<Utc>,
        ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
            reclaim_ticks(&mut self.conn, by, stale_before)
        }

        fn keep_claims(&mut self, by: &str) -> Result<(), StoreError> {
            keep_claims(&mut self.conn, by)
        }

        fn has_open_tick(&mut self, integration: &str) -> Result<bool, StoreError> {
            has_open_tick(&mut self.conn, integration)
        }

        fn prune_ticks(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
            prune_ticks(&mut self.conn, before)
        }

        fn claim_spec(&mut self, integration: &str, spec_hash: &str) -> Result<bool, StoreError> {
            claim_spec(&mut self.conn, integration, spec_hash)
        }

        fn request_refresh(
            &mut self,
            integration: &str,
            by: &str,
        ) -> Result<Option<i64>, StoreError> {
            request_refresh(&mut self.conn, integration, by)
        }

        fn claim_refreshes(
            &mut self,
            by: &str,
            stale_before: DateTime<Utc>,
        ) -> Result<Vec<(i64, String)>, StoreError> {
            claim_refreshes(&mut self.conn, by, stale_before)
        }

        fn finish_refresh(
            &mut self,
            request: i64,
            run: Option<RunId>,
            outcome: &str,
        ) -> Result<(), StoreError> {
            finish_refresh(&mut self.conn, request, run, outcome)
        }

        fn refresh_outcome(&mut self, request: i64) -> Result<Option<RefreshOutcome>, StoreError> {
            refresh_outcome(&mut self.conn, request)
        }

        fn refresh_claimed(&mut self, request: i64) -> Result<bool, StoreError> {
            refresh_claimed(&mut self.conn, request)
        }

        fn coalesce_refresh(&mut self, request: i64) -> Result<Option<RefreshOutcome>, StoreError> {
            coalesce_refresh(&mut self.conn, request)
        }

        fn live_integrations(&mut self) -> Result<Vec<LiveIntegration>, StoreError> {
            live_integrations(&mut self.conn)
        }

        fn set_integration_state(
            &mut self,
            integration: &str,
            state: &str,
        ) -> Result<(), StoreError> {
            set_integration_state(&mut self.conn, integration, state)
        }

        fn undelete_integration(
            &mut self,
            integration: &str,
            state: &str,
        ) -> Result<bool, StoreError> {
            undelete_integration(&mut self.conn, integration, state)
        }

        fn record_manifest_problem(
            &mut self,
            integration: &str,
            attempted_spec_hash: Option<&str>,
            error: Option<&str>,
        ) -> Result<(), StoreError> {
            record_manifest_problem(&mut self.conn, integration, attempted_spec_hash, error)
        }

        fn retire_integration(
            &mut self,
            integration: &str,
            pause: bool,
        ) -> Result<u32, StoreError> {
            retire_integration(&mut self.conn, integration, pause)
        }
    };
}

pub(super) use shared_store_methods;
pub(super) use shared_writes_methods;
