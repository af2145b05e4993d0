//! The SQLite store's group commit: concurrent sends, outcomes and statuses are committed
//! together, and still decide exactly as one transaction each would; a write that fails in a
//! group fails alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use plantilla::domain::ids::hash_token;
use plantilla::domain::status::MessageStatus;
use plantilla::service::send::period_of;
use plantilla::store::sqlite::SqliteStore;
use plantilla::store::*;
use tokio::task::JoinSet;

const LEASE: i64 = 30_000;
const ORPHAN_WAIT: i64 = 120_000;

use crate::common::store_seed::{self, Seeded, accept};

async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    Arc::new(SqliteStore::open(&url, "full").await.expect("open"))
}

async fn seed(store: &SqliteStore, conversation_limit: i64) -> Seeded {
    store_seed::seed(store, conversation_limit).await
}

/// Messages stored, whatever their status.
async fn messages(store: &SqliteStore) -> i64 {
    let counts = store.message_counts().await.expect("counts");
    counts.iter().map(|(_, n)| n).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_are_grouped_and_decide_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    // Room for 150 new conversations: of 200 new numbers, 50 must be refused.
    let s = Arc::new(seed(&store, 150).await);
    let mut tasks = JoinSet::new();
    for i in 0..200 {
        let (store, s) = (store.clone(), s.clone());
        tasks.spawn(async move {
            let outcome = store
                .accept_send(&accept(&s, &format!("5075500{i:04}"), plantilla::now_ms()))
                .await;
            ("new", outcome)
        });
    }
    for _ in 0..20 {
        let (store, s) = (store.clone(), s.clone());
        tasks.spawn(async move {
            let outcome = store
                .accept_send(&accept(&s, "50766660000", plantilla::now_ms()))
                .await;
            ("same", outcome)
        });
    }
    let (mut pending, mut limit, mut already, mut same_pending, mut same_limit) = (0, 0, 0, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (kind, Ok(AcceptOutcome::Pending { .. })) => {
                pending += 1;
                if kind == "same" {
                    same_pending += 1;
                }
            }
            ("same", Ok(AcceptOutcome::AlreadyPending { .. })) => already += 1,
            ("new", Ok(AcceptOutcome::LimitReached)) => limit += 1,
            ("same", Ok(AcceptOutcome::LimitReached)) => same_limit += 1,
            (kind, other) => panic!("{kind}: unexpected {other:?}"),
        }
    }
    // The repeated number got one pending conversation and 19 "already pending", or came
    // after the limit and was refused 20 times: never two conversations.
    assert!(same_pending <= 1);
    assert_eq!(same_pending + already + same_limit, 20);
    assert_eq!(
        already,
        19 * same_pending,
        "one pending conversation for the repeated number"
    );
    assert_eq!(pending, 150, "the plan limit holds inside a group");
    assert_eq!(pending + limit + same_limit.min(1), 201);
    assert_eq!(messages(&store).await, 150);

    let stats = store.group_stats();
    let groups = stats.groups.load(Ordering::Relaxed);
    let grouped = stats.grouped_writes.load(Ordering::Relaxed);
    assert!(groups > 0, "221 concurrent sends made no group: {stats:?}");
    assert!(
        grouped > groups,
        "groups of one are not groups: {grouped} in {groups}"
    );
    assert_eq!(stats.split.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_fails_in_a_group_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let s = Arc::new(seed(&store, 100_000).await);
    // Until the failing send shares a group (the first wave almost always does).
    for wave in 0..10 {
        let mut tasks = JoinSet::new();
        for i in 0..50 {
            let (store, s) = (store.clone(), s.clone());
            tasks.spawn(async move {
                let phone = format!("50755{wave:02}{i:04}");
                (
                    false,
                    store
                        .accept_send(&accept(&s, &phone, plantilla::now_ms()))
                        .await,
                )
            });
        }
        // A send for an account that does not exist breaks a foreign key (before any rule
        // could refuse it).
        let (store2, s2) = (store.clone(), s.clone());
        tasks.spawn(async move {
            let mut bad = accept(&s2, &format!("50766{wave:02}0000"), plantilla::now_ms());
            bad.account_id = "acc_missing".into();
            (true, store2.accept_send(&bad).await)
        });
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap() {
                (true, outcome) => assert!(outcome.is_err(), "accepted: {outcome:?}"),
                (false, Ok(AcceptOutcome::Pending { .. })) => {}
                (false, other) => panic!("a good send suffered: {other:?}"),
            }
        }
        assert_eq!(messages(&store).await, 50 * (wave + 1));
        if store.group_stats().split.load(Ordering::Relaxed) > 0 {
            return;
        }
    }
    panic!("in ten waves the failing send never shared a group: nothing was tested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_outcomes_and_statuses_keep_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let s = Arc::new(seed(&store, 1000).await);
    let mut ids = Vec::new();
    for i in 0..100 {
        match store
            .accept_send(&accept(&s, &format!("5075511{i:04}"), plantilla::now_ms()))
            .await
            .unwrap()
        {
            AcceptOutcome::Pending { message_id, .. } => ids.push(message_id),
            other => panic!("{other:?}"),
        }
    }
    let now = plantilla::now_ms();
    let jobs = store
        .claim_jobs(&s.channel.id, 100, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 100, "one claim takes all the due jobs");
    assert!(
        jobs.iter().all(|j| j.template.id == s.template.id
            && j.message.status == MessageStatus::Sending
            && j.message.attempts == 1),
        "claimed jobs carry their message (now sending, one attempt) and template"
    );
    assert_eq!(
        jobs.iter()
            .map(|j| j.message.id.clone())
            .collect::<Vec<_>>(),
        ids,
        "claimed oldest first"
    );

    // All outcomes and, racing them, `read` then a late `sent` for every message.
    let mut tasks = JoinSet::new();
    for job in &jobs {
        let store = store.clone();
        let (id, attempt) = (job.message.id.clone(), job.attempt);
        tasks.spawn(async move {
            let wamid = format!("wamid.{id}");
            let finished = store
                .finish_attempt(&AttemptOutcome {
                    message_id: id.clone(),
                    attempt,
                    now: plantilla::now_ms(),
                    result: AttemptResult::Accepted {
                        provider_message_id: wamid.clone(),
                        wa_id: None,
                    },
                })
                .await
                .unwrap();
            assert!(
                matches!(finished, Finished::Recorded { .. }),
                "{finished:?}"
            );
            for status in [MessageStatus::Read, MessageStatus::Sent] {
                let applied = store
                    .apply_status(&StatusUpdate {
                        provider_message_id: Some(wamid.clone()),
                        message_id: Some(id.clone()),
                        channel_id: None,
                        status,
                        at: plantilla::now_ms(),
                        error: None,
                        pricing_category: None,
                        pricing: None,
                    })
                    .await
                    .unwrap();
                assert!(
                    matches!(
                        applied,
                        StatusApplied::Applied {
                            status: MessageStatus::Read,
                            ..
                        }
                    ),
                    "{status}: {applied:?}"
                );
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    for id in &ids {
        let m = store.message(id).await.unwrap().expect("stored");
        assert_eq!(
            m.status,
            MessageStatus::Read,
            "read is not undone by a late sent"
        );
        assert_eq!(
            m.provider_message_id.as_deref(),
            Some(format!("wamid.{id}").as_str())
        );
        assert!(m.sent_at.is_some(), "the late sent keeps its time");
    }
    assert!(
        store
            .claim_jobs(
                &s.channel.id,
                100,
                plantilla::now_ms() + ORPHAN_WAIT + LEASE,
                LEASE,
                ORPHAN_WAIT
            )
            .await
            .unwrap()
            .is_empty(),
        "a recorded send leaves no job behind"
    );
    assert!(store.group_stats().groups.load(Ordering::Relaxed) > 0);
}

/// Rows that a send decides, as text, in a stable order.
async fn dump(store: &SqliteStore) -> Vec<String> {
    let pool = store.read_pool();
    let mut out = Vec::new();
    for (what, sql) in [
        (
            "conversation",
            "SELECT id || ' ' || status || ' ' || client_name || ' ' || coalesce(close_reason, '-')
                || ' ' || coalesce(closed_at, '-') || ' ' || last_activity_at || ' '
                || coalesce(first_message_id, '-') || ' ' || created_at
             FROM conversations ORDER BY id",
        ),
        (
            "message",
            "SELECT id || ' ' || conversation_id || ' ' || status || ' ' || phone_number || ' '
                || params || ' ' || queued_at
             FROM messages ORDER BY id",
        ),
        (
            "job",
            "SELECT message_id || ' ' || channel_id || ' ' || run_at FROM delivery_jobs
             ORDER BY message_id",
        ),
        (
            "contact",
            "SELECT phone_number || ' ' || client_name || ' ' || created_at || ' ' || updated_at
             FROM contacts ORDER BY phone_number",
        ),
        (
            "usage",
            "SELECT period || ' ' || used FROM conversation_usage WHERE used > 0 ORDER BY period",
        ),
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        out.extend(rows.into_iter().map(|r| format!("{what}: {r}")));
    }
    out
}

#[tokio::test]
async fn a_group_of_sends_decides_exactly_as_the_same_sends_one_by_one() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (grouped, alone) = (open(&dirs.0).await, open(&dirs.1).await);
    // Room for 40 new conversations in the group: the limit is reached part way.
    let limit = 60;
    let s = seed(&grouped, limit).await;
    // The same account, channel and template rows in the second store.
    alone.insert_account(&s.account).await.unwrap();
    alone
        .insert_channel(&s.channel, &hash_token(&s.channel.id))
        .await
        .unwrap();
    alone.insert_template(&s.template).await.unwrap();

    let base = plantilla::now_ms() - 10_000;
    let mut n = 0;
    let mut send = |phone: String, name: Option<&str>, expire: bool| {
        n += 1;
        let mut a = accept(&s, &phone, plantilla::now_ms());
        a.now = base + n;
        a.period = period_of(a.now);
        a.client_name = name.map(str::to_string);
        a.new_conversation_id = format!("conv_{n:05}");
        a.new_message_id = format!("msg_{n:05}");
        a.params = BTreeMap::from([("name".to_string(), format!("N{n}"))]);
        // Open conversations idle since before this are closed first.
        a.expire_before = if expire { a.now } else { base - 1 };
        a
    };
    // Before: 20 conversations, 10 of them opened by a delivered first message.
    let mut before = Vec::new();
    for i in 0..20 {
        before.push(send(format!("50761000{i:03}"), Some("Old name"), false));
    }
    for store in [&grouped, &alone] {
        for a in &before {
            store.accept_send(a).await.unwrap();
        }
        for a in &before[..10] {
            store
                .apply_status(&StatusUpdate {
                    provider_message_id: None,
                    message_id: Some(a.new_message_id.clone()),
                    channel_id: None,
                    status: MessageStatus::Delivered,
                    at: a.now,
                    error: None,
                    pricing_category: None,
                    pricing: None,
                })
                .await
                .unwrap();
        }
    }
    // The group: open conversations (named and not), one of them expired; pending ones;
    // the same new number three times; 60 new numbers past the plan limit; names kept.
    let mut sends = Vec::new();
    for i in 0..10 {
        let name = if i % 2 == 0 { Some("New name") } else { None };
        sends.push(send(format!("50761000{i:03}"), name, i == 3));
    }
    for i in 10..20 {
        sends.push(send(format!("50761000{i:03}"), None, false));
    }
    for _ in 0..3 {
        sends.push(send("50762000000".into(), Some("Repeated"), false));
    }
    for i in 0..60 {
        let name = if i % 3 == 0 { None } else { Some("Fresh") };
        sends.push(send(format!("50763000{i:03}"), name, false));
    }
    // Again: to a conversation this group created, to one it expired and created again,
    // and to open ones (a name given twice in the group, then none).
    sends.push(send("50763000001".into(), Some("Again"), false));
    sends.push(send("50761000003".into(), None, false));
    sends.push(send("50761000000".into(), None, false));
    sends.push(send("50761000002".into(), Some("Third"), false));

    let together = grouped.accept_group(&sends).await.unwrap();
    let mut one_by_one = Vec::new();
    for a in &sends {
        one_by_one.push(alone.accept_send(a).await.unwrap());
    }
    assert_eq!(together, one_by_one);
    let kinds = |outcomes: &[AcceptOutcome]| {
        let mut k = BTreeMap::new();
        for o in outcomes {
            let name = match o {
                AcceptOutcome::Sent { .. } => "sent",
                AcceptOutcome::Pending { .. } => "pending",
                AcceptOutcome::AlreadyPending { .. } => "already pending",
                AcceptOutcome::LimitReached => "limit",
                _ => "other",
            };
            *k.entry(name).or_insert(0) += 1;
        }
        k
    };
    // Every kind of decision was made (or the comparison above proved little).
    assert_eq!(
        kinds(&together),
        BTreeMap::from([
            ("already pending", 14),
            ("limit", 22),
            ("pending", 40),
            ("sent", 11),
        ]),
        "{together:?}"
    );
    assert_eq!(dump(&grouped).await, dump(&alone).await);
}

/// Entries in the index `name`: the cells of its leaf pages, as SQLite's `dbstat` counts them.
async fn index_entries(store: &SqliteStore, name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(ncell), 0) FROM dbstat WHERE name = $1 AND pagetype = 'leaf'",
    )
    .bind(name)
    .fetch_one(store.read_pool())
    .await
    .unwrap()
}

/// The indexes SQLite's planner picks for `query` (its `EXPLAIN QUERY PLAN`).
async fn plan(store: &SqliteStore, query: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    rows.into_iter()
        .map(|(.., detail)| detail)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A message outside a batch and not yet claimed writes no entry in `messages_batch` or
/// `messages_channel_sending` (two of the nine indexes each accepted send paid for), and the
/// queries those indexes serve still find their rows through them.
#[tokio::test]
async fn a_plain_send_writes_no_batch_or_sending_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let s = seed(&store, 1000).await;
    let now = plantilla::now_ms();
    let batch = Batch {
        id: plantilla::domain::ids::new_id("bat"),
        account_id: s.account.id.clone(),
        channel_id: s.channel.id.clone(),
        total: 1,
        accepted: 1,
        rejected: 0,
        created_at: now,
        paused: false,
    };
    store.insert_batch(&batch).await.unwrap();
    for i in 0..3 {
        store
            .accept_send(&accept(&s, &format!("5076400000{i}"), now))
            .await
            .unwrap();
    }
    assert_eq!(index_entries(&store, "messages_batch").await, 0);
    assert_eq!(index_entries(&store, "messages_channel_sending").await, 0);
    // Every other index of the table has one entry per message (the count is honest).
    assert_eq!(index_entries(&store, "messages_account_time").await, 3);

    let mut in_batch = accept(&s, "50764000009", now);
    in_batch.batch_id = Some(batch.id.clone());
    store.accept_send(&in_batch).await.unwrap();
    assert_eq!(index_entries(&store, "messages_batch").await, 1);
    assert_eq!(
        store.batch_counts(&batch.id).await.unwrap(),
        [("queued".to_string(), 1)]
    );

    // The claim sets `sending_at`: each claimed message gets its entry then.
    let jobs = store
        .claim_jobs(&s.channel.id, 2, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(index_entries(&store, "messages_channel_sending").await, 2);
    assert_eq!(
        store
            .new_recipients(&s.channel.id, now)
            .await
            .unwrap()
            .count,
        2
    );

    // The store's queries (as `store::sql` writes them) are answered from the partial indexes:
    // SQLite uses one only where the query implies its `IS NOT NULL`.
    let batch_plan = plan(
        &store,
        "SELECT status, count(*) AS n FROM messages WHERE batch_id = $1 GROUP BY status",
    )
    .await;
    assert!(
        batch_plan.contains("USING INDEX messages_batch"),
        "{batch_plan}"
    );
    let recipients_plan = plan(
        &store,
        "SELECT count(DISTINCT m.phone_number) AS n, min(m.sending_at) AS oldest
         FROM messages m JOIN conversations c ON c.first_message_id = m.id
         WHERE m.channel_id = $1 AND m.sending_at >= $2",
    )
    .await;
    assert!(
        recipients_plan
            .contains("USING INDEX messages_channel_sending (channel_id=? AND sending_at>?)"),
        "{recipients_plan}"
    );
}

/// A message's status changes build no temporary B-tree for `messages_in_flight`'s
/// predicate (an `IN` list of three constants did, twice per update), and the sandbox's
/// resume query, written as the store writes it, is still answered from that index.
#[tokio::test]
async fn a_status_update_builds_no_temporary_table_and_resume_uses_the_in_flight_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let opcodes: Vec<String> = sqlx::query(
        "EXPLAIN UPDATE messages SET status = $1, sent_at = coalesce(sent_at, $2),
            updated_at = $2 WHERE id = $3",
    )
    .fetch_all(store.read_pool())
    .await
    .unwrap()
    .iter()
    .map(|op| sqlx::Row::get(op, "opcode"))
    .collect();
    assert!(opcodes.iter().any(|op| op == "IdxInsert"), "{opcodes:?}");
    assert!(
        !opcodes.iter().any(|op| op == "OpenEphemeral"),
        "{opcodes:?}"
    );

    let resume_plan = plan(&store, &plantilla::store::sandbox_in_flight_sql("$1")).await;
    assert!(
        resume_plan.contains("USING INDEX messages_in_flight (channel_id=?)"),
        "{resume_plan}"
    );
}
