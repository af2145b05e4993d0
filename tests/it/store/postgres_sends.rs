//! PostgreSQL's group commit of sends (`PgStore::accept_group`): a group decides exactly as
//! the same sends one by one (`accept_send`) on a copy of the same database, and concurrent
//! groups from two instances sharing a database keep one pending conversation per number
//! and the plan's limit. And the statuses kept for a message are taken by its accepted
//! outcome right after its commit (`finish_and_take_kept`), alone or in a group, also those
//! kept while the outcome was being written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::postgres_status_group::{counted, with_databases};
use crate::common::create_pg_database;
use crate::common::store_seed::{self, Seeded, accept, status};
use plantilla::domain::ids::{hash_token, new_id};
use plantilla::domain::status::MessageStatus;
use plantilla::store::postgres::PgStore;
use plantilla::store::*;
use serde_json::json;
use tokio::task::JoinSet;

const LEASE: i64 = 30_000;
const ORPHAN_WAIT: i64 = 120_000;
const DAY: i64 = 24 * 3600 * 1000;

/// Every row a send may write, as JSON, table by table.
async fn dump(store: &PgStore) -> Vec<(&'static str, serde_json::Value)> {
    let mut tables = Vec::new();
    for (table, order) in [
        ("conversations", "id"),
        ("messages", "id"),
        ("delivery_jobs", "seq"),
        ("contacts", "account_id, phone_number"),
        ("conversation_usage", "account_id, period"),
    ] {
        let rows: String = sqlx::query_scalar(&format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {order}), '[]')::text FROM {table} t"
        ))
        .fetch_one(store.pool())
        .await
        .unwrap();
        tables.push((table, serde_json::from_str(&rows).unwrap()));
    }
    tables
}

/// A send of `s`'s template to `phone` at `now`, with a known limit.
fn send(s: &Seeded, phone: &str, now: i64, limit: i64) -> AcceptSend {
    AcceptSend {
        conversation_limit: limit,
        ..accept(s, phone, now)
    }
}

async fn sql(store: &PgStore, statement: &str) {
    sqlx::query(statement).execute(store.pool()).await.unwrap();
}

postgres_only!(
    a_group_of_sends_decides_exactly_as_the_same_sends_one_by_one,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_group_of_sends_decides_exactly_as_the_same_sends_one_by_one() {
    with_databases(|dbs| async move {
        let setup = PgStore::open(&dbs.url(&dbs.original), 4).await.unwrap();
        let s = store_seed::seed(&setup, 1000).await;
        // A second channel of the account, and an account whose plan allows nothing.
        let mut b = Seeded {
            account: s.account.clone(),
            channel: s.channel.clone(),
            template: s.template.clone(),
        };
        b.channel.id = new_id("chn");
        b.channel.phone_number_id = new_id("pnid");
        setup
            .insert_channel(&b.channel, &hash_token(&b.channel.id))
            .await
            .unwrap();
        let none = store_seed::seed(&setup, 0).await;

        let t = plantilla::now_ms();
        // The state the group meets (five conversations counted this period):
        // …01 pending; …02 open; …03 and …06 open past their window; …04 pending, its
        // contact named Berta; …05 closed, its contact named Carla.
        for (phone, name) in [
            ("50762000001", None),
            ("50762000002", None),
            ("50762000003", None),
            ("50762000004", Some("Berta")),
            ("50762000005", Some("Carla")),
        ] {
            let mut a = send(&s, phone, t - 5_000, 1000);
            a.client_name = name.map(str::to_string);
            a.new_conversation_id = format!("conv_{phone}");
            a.new_message_id = format!("msg_{phone}");
            let outcome = setup.accept_send(&a).await.unwrap();
            assert!(
                matches!(outcome, AcceptOutcome::Pending { .. }),
                "{outcome:?}"
            );
        }
        // Open past its window, counted the month before (so this period's counter is 5).
        let mut old = send(&s, "50762000006", t - 40 * DAY, 1000);
        old.new_conversation_id = "conv_50762000006".into();
        old.new_message_id = "msg_50762000006".into();
        setup.accept_send(&old).await.unwrap();
        sql(
            &setup,
            &format!(
                "UPDATE conversations SET status = 'open', opened_at = {o}, last_activity_at = {o}
                 WHERE id = 'conv_50762000002'",
                o = t - 1_000
            ),
        )
        .await;
        sql(
            &setup,
            &format!(
                "UPDATE conversations SET status = 'open', opened_at = {o}, last_activity_at = {o}
                 WHERE id IN ('conv_50762000003', 'conv_50762000006')",
                o = t - 2 * DAY
            ),
        )
        .await;
        sql(
            &setup,
            "UPDATE conversations SET status = 'closed', closed_at = 1, close_reason = 'agent'
             WHERE id = 'conv_50762000005'",
        )
        .await;
        setup.pool().close().await;
        drop(setup);
        let (grouped, alone) = dbs.copy_and_open().await;

        // The plan admits 9 conversations this period: 4 more.
        let mut sends = Vec::new();
        let mut add = |seeded: &Seeded, phone: &str, name: Option<&str>, limit: i64| {
            let mut a = send(seeded, phone, t + sends.len() as i64, limit);
            a.client_name = name.map(str::to_string);
            a.new_conversation_id = format!("conv_g{:02}", sends.len());
            a.new_message_id = format!("msg_g{:02}", sends.len());
            sends.push(a);
        };
        add(&s, "50762000010", None, 9); // 0: new (6 of 9)
        add(&s, "50762000011", Some("Dora"), 9); // 1: new, named (7)
        add(&s, "50762000010", Some("Dorotea"), 9); // 2: pending since 0
        add(&s, "50762000001", None, 9); // 3: pending before the group
        add(&s, "50762000002", Some("Eva"), 9); // 4: on the open conversation
        add(&s, "50762000003", None, 9); // 5: expired: closed, a new one (8)
        add(&b, "50762000004", None, 9); // 6: another channel: new, named Berta (9)
        add(&s, "50762000005", None, 9); // 7: the limit is reached
        add(&s, "50762000002", None, 9); // 8: on the open conversation again
        add(&s, "50762000013", None, 9); // 9: the limit
        add(&none, "50762000001", None, 0); // 10: a plan that allows nothing
        add(&s, "50762000014", None, 20); // 11: a send that carries a higher limit (10)
        add(&s, "50762000006", Some("Fito"), 10); // 12: expired, closed; the limit
        add(&s, "50762000011", None, 20); // 13: pending since 1
        // 14: scheduled, with everything a message may carry (11 of 20)
        add(&s, "50762000015", Some("Gala"), 20);
        let last = sends.last_mut().unwrap();
        last.send_at = Some(t + 60_000);
        last.batch_id = Some("bat_1".into());
        last.callback_url = Some("http://127.0.0.1:9/cb".into());
        last.metadata = Some(json!({"order": 7}));

        let (together, statements) = counted(grouped.accept_group(&sends)).await;
        let together = together.expect("decide the group");
        let mut one_by_one = Vec::new();
        for a in &sends {
            one_by_one.push(alone.accept_send(a).await.unwrap());
        }
        assert_eq!(together, one_by_one);
        let pending = |n: usize| AcceptOutcome::Pending {
            conversation_id: format!("conv_g{n:02}"),
            message_id: format!("msg_g{n:02}"),
        };
        let already = |id: &str| AcceptOutcome::AlreadyPending {
            conversation_id: id.to_string(),
        };
        let sent = |n: usize| AcceptOutcome::Sent {
            conversation_id: "conv_50762000002".into(),
            message_id: format!("msg_g{n:02}"),
        };
        assert_eq!(
            together,
            vec![
                pending(0),
                pending(1),
                already("conv_g00"),
                already("conv_50762000001"),
                sent(4),
                pending(5),
                pending(6),
                AcceptOutcome::LimitReached,
                sent(8),
                AcceptOutcome::LimitReached,
                AcceptOutcome::LimitReached,
                pending(11),
                AcceptOutcome::LimitReached,
                already("conv_g01"),
                pending(14),
            ],
            "every kind of decision was made (or the comparison proved little)"
        );
        for ((table, g), (_, a)) in dump(&grouped).await.into_iter().zip(dump(&alone).await) {
            assert_eq!(g, a, "table {table}: group (left) and one by one (right)");
        }
        let names: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, client_name FROM conversations WHERE id IN ('conv_g06', 'conv_g01')
             ORDER BY id",
        )
        .fetch_all(grouped.pool())
        .await
        .unwrap();
        assert_eq!(
            names,
            [
                ("conv_g01".into(), "Dora".into()),
                ("conv_g06".into(), "Berta".into())
            ]
        );
        let closed: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM conversations WHERE close_reason = 'expired' ORDER BY id",
        )
        .fetch_all(grouped.pool())
        .await
        .unwrap();
        assert_eq!(closed, ["conv_50762000003", "conv_50762000006"]);
        let counters: i64 = sqlx::query_scalar("SELECT count(*) FROM conversation_usage")
            .fetch_one(grouped.pool())
            .await
            .unwrap();
        assert_eq!(counters, 2, "no counter for the plan that allows nothing");
        // The active conversations, the counters, the contacts, the writes, COMMIT (sqlx
        // does not log BEGIN), whatever the group's size.
        eprintln!("{} sends as a group: {statements:?}", sends.len());
        assert_eq!(statements.len(), 5, "{statements:?}");
        grouped.pool().close().await;
        alone.pool().close().await;
    })
    .await;
}

postgres_only!(
    concurrent_sends_from_two_instances_keep_one_pending_conversation_and_the_limit,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Many sends at once from two instances sharing the database, three to each number from
/// both: one pending conversation per number, the plan's limit exactly, every send answered
/// (a group that lost a race to the other instance was decided again one by one), and sends
/// were committed in groups.
async fn concurrent_sends_from_two_instances_keep_one_pending_conversation_and_the_limit() {
    let db = create_pg_database().await;
    let a = Arc::new(PgStore::open(&db.url(), 16).await.unwrap());
    let b = Arc::new(PgStore::open(&db.url(), 16).await.unwrap());
    const LIMIT: i64 = 40;
    const NUMBERS: usize = 60;
    let s = Arc::new(store_seed::seed(a.as_ref(), LIMIT).await);
    let mut tasks = JoinSet::new();
    for round in 0..3 {
        for n in 0..NUMBERS {
            let store = if (n + round) % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let s = s.clone();
            tasks.spawn(async move {
                let phone = format!("5078{n:07}");
                let send = accept(&s, &phone, plantilla::now_ms());
                // As the send service does: a conflict is decided again.
                let mut tries = 0;
                loop {
                    match store.accept_send(&send).await {
                        Err(StoreError::Conflict(e)) if tries < 5 => {
                            tries += 1;
                            eprintln!("conflict, deciding again: {e}");
                        }
                        other => return (phone, send, other.expect("a send is answered")),
                    }
                }
            });
        }
    }
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut already: Vec<(String, String)> = Vec::new();
    let mut limited = 0;
    while let Some(joined) = tasks.join_next().await {
        let (phone, send, outcome) = joined.unwrap();
        match outcome {
            AcceptOutcome::Pending {
                conversation_id,
                message_id,
            } => {
                assert_eq!(message_id, send.new_message_id);
                assert!(
                    pending.insert(phone.clone(), conversation_id).is_none(),
                    "{phone}: two pending conversations"
                );
            }
            AcceptOutcome::AlreadyPending { conversation_id } => {
                already.push((phone, conversation_id))
            }
            AcceptOutcome::LimitReached => limited += 1,
            other => panic!("{phone}: {other:?}"),
        }
    }
    assert_eq!(
        pending.len() as i64,
        LIMIT,
        "the plan's conversations, exactly"
    );
    for (phone, conversation) in &already {
        assert_eq!(pending.get(phone), Some(conversation), "{phone}");
    }
    assert_eq!(pending.len() + already.len() + limited, 3 * NUMBERS);

    let per_number: Vec<(String, i64)> =
        sqlx::query_as("SELECT phone_number, count(*) FROM conversations GROUP BY phone_number")
            .fetch_all(a.pool())
            .await
            .unwrap();
    let per_number: BTreeMap<String, i64> = per_number.into_iter().collect();
    assert_eq!(per_number.len() as i64, LIMIT);
    assert!(per_number.values().all(|&n| n == 1), "{per_number:?}");
    for (phone, conversation) in &pending {
        let status: String = sqlx::query_scalar("SELECT status FROM conversations WHERE id = $1")
            .bind(conversation)
            .fetch_one(a.pool())
            .await
            .unwrap();
        assert_eq!(status, "pending", "{phone}");
    }
    let used: i64 = sqlx::query_scalar("SELECT used FROM conversation_usage")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(used, LIMIT);
    let (messages, jobs): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM delivery_jobs)",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!((messages, jobs), (LIMIT, LIMIT));
    let (sa, sb) = (a.send_group_stats(), b.send_group_stats());
    let groups = sa.groups.load(Ordering::Relaxed) + sb.groups.load(Ordering::Relaxed);
    let grouped =
        sa.grouped_sends.load(Ordering::Relaxed) + sb.grouped_sends.load(Ordering::Relaxed);
    eprintln!(
        "groups {groups}, grouped sends {grouped}, split {}",
        sa.split.load(Ordering::Relaxed) + sb.split.load(Ordering::Relaxed)
    );
    // Two instances racing for the same numbers may both have their groups rolled back (a
    // conversation the other created first) and run them one by one: what counts is that
    // concurrent sends were taken as groups, and that the outcome above is exact either way.
    let split = sa.split.load(Ordering::Relaxed) + sb.split.load(Ordering::Relaxed);
    assert!(
        groups + split > 0,
        "{} concurrent sends were never taken as a group",
        3 * NUMBERS
    );
    assert!(
        groups == 0 || grouped > groups,
        "groups of one are not groups"
    );
    drop((a, b));
    drop(db);
}

postgres_only!(
    accepted_outcomes_take_their_kept_statuses_in_their_own_write,
    flavor = "multi_thread",
    worker_threads = 4
);
/// Statuses that arrived before the provider's response are taken by the accepted outcome
/// (right after its commit), each message its own in arrival order, once: alone, in a group,
/// and not by a stale outcome or by `finish_attempt`.
async fn accepted_outcomes_take_their_kept_statuses_in_their_own_write() {
    let db = create_pg_database().await;
    let store = PgStore::open(&db.url(), 8).await.unwrap();
    let s = store_seed::seed(&store, 1000).await;
    let now = plantilla::now_ms();
    let mut ids = Vec::new();
    for n in 0..6 {
        let mut a = accept(&s, &format!("5079000000{n}"), now);
        a.new_message_id = format!("msg_k{n}");
        store.accept_send(&a).await.unwrap();
        ids.push(a.new_message_id);
    }
    let jobs = store
        .claim_jobs(&s.channel.id, 10, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 6);
    // Two statuses for each message but the last, kept before its response.
    for n in 0..5 {
        for (st, at) in [
            (MessageStatus::Delivered, now + 2),
            (MessageStatus::Sent, now + 1),
        ] {
            store
                .store_pending_status(&status(&format!("wamid.k{n}"), st, at), now)
                .await
                .unwrap();
        }
    }
    let outcome = |n: usize, attempt: i64| AttemptOutcome {
        message_id: ids[n].clone(),
        attempt,
        now: now + 10,
        result: AttemptResult::Accepted {
            provider_message_id: format!("wamid.k{n}"),
            wa_id: None,
        },
    };
    let kept_for = |taken: &[StatusUpdate]| {
        taken
            .iter()
            .map(|u| (u.provider_message_id.clone().unwrap(), u.status))
            .collect::<Vec<_>>()
    };
    let arrival = |n: usize| {
        vec![
            (format!("wamid.k{n}"), MessageStatus::Delivered),
            (format!("wamid.k{n}"), MessageStatus::Sent),
        ]
    };
    // Alone.
    let (finished, kept) = store.finish_and_take_kept(&outcome(0, 1)).await.unwrap();
    assert_eq!(finished, Finished::Recorded { conversation: None });
    assert_eq!(kept_for(&kept.unwrap()), arrival(0));
    // `finish_attempt` leaves them for `take_pending_statuses`.
    store.finish_attempt(&outcome(1, 1)).await.unwrap();
    // A group: two with kept statuses, a stale one (its job is at attempt 1), one without.
    let group = [outcome(2, 1), outcome(3, 1), outcome(4, 7), outcome(5, 1)];
    let taken = store.finish_group_taking_kept(&group, true).await.unwrap();
    let recorded = Finished::Recorded { conversation: None };
    let finished: Vec<&Finished> = taken.iter().map(|(f, _)| f).collect();
    assert_eq!(
        finished,
        [&recorded, &recorded, &Finished::Stale, &recorded]
    );
    assert_eq!(kept_for(&taken[0].1), arrival(2));
    assert_eq!(kept_for(&taken[1].1), arrival(3));
    assert!(taken[2].1.is_empty() && taken[3].1.is_empty());
    let left: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT provider_message_id FROM pending_statuses ORDER BY 1")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(left, ["wamid.k1", "wamid.k4"]);
    assert_eq!(
        kept_for(
            &store
                .take_pending_statuses("wamid.k1", &ids[1])
                .await
                .unwrap()
        ),
        arrival(1)
    );
    drop(store);
    drop(db);
}

postgres_only!(
    a_status_kept_while_its_outcome_is_written_is_taken_by_the_outcome,
    flavor = "multi_thread",
    worker_threads = 4
);
/// A status looked up while its message's outcome is being written (the wamid not committed:
/// the message is unknown) and kept after the outcome's statement took its snapshot: the
/// outcome still takes it, alone and in a group, and nothing stays kept. The test holds the
/// outcome inside its statement by locking one of its messages' rows, and lets it go once
/// the status is kept.
async fn a_status_kept_while_its_outcome_is_written_is_taken_by_the_outcome() {
    let db = create_pg_database().await;
    let store = Arc::new(PgStore::open(&db.url(), 8).await.unwrap());
    let s = store_seed::seed(&*store, 1000).await;
    let now = plantilla::now_ms();
    for n in 0..3 {
        let mut a = accept(&s, &format!("5079100000{n}"), now);
        a.new_message_id = format!("msg_r{n}");
        store.accept_send(&a).await.unwrap();
    }
    let jobs = store
        .claim_jobs(&s.channel.id, 10, now, LEASE, ORPHAN_WAIT)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 3);
    let outcome = |n: usize| AttemptOutcome {
        message_id: format!("msg_r{n}"),
        attempt: 1,
        now: now + 10,
        result: AttemptResult::Accepted {
            provider_message_id: format!("wamid.r{n}"),
            wa_id: None,
        },
    };
    // msg_r0's outcome alone, then msg_r1's and msg_r2's as a group (held at msg_r2).
    for (messages, held) in [(vec![0], 0), (vec![1, 2], 2)] {
        let mut blocker = store.pool().begin().await.unwrap();
        let blocker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *blocker)
            .await
            .unwrap();
        sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE")
            .bind(format!("msg_r{held}"))
            .execute(&mut *blocker)
            .await
            .unwrap();
        let writer = {
            let store = store.clone();
            let group: Vec<AttemptOutcome> = messages.iter().map(|&n| outcome(n)).collect();
            tokio::spawn(async move {
                if let [one] = &group[..] {
                    let (finished, kept) = store.finish_and_take_kept(one).await.unwrap();
                    vec![(finished, kept.unwrap())]
                } else {
                    store.finish_group_taking_kept(&group, true).await.unwrap()
                }
            })
        };
        // The outcome's statement has its snapshot and waits for the message's row.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                WHERE $1 = ANY (pg_blocking_pids(pid)))",
            )
            .bind(blocker_pid)
            .fetch_one(store.pool())
            .await
            .unwrap();
            if waiting {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the outcome never waited for the row"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Meanwhile a status of each message comes: its wamid is not committed, so the
        // message is unknown and the status is kept (after the outcome's snapshot).
        for &n in &messages {
            let early = status(&format!("wamid.r{n}"), MessageStatus::Sent, now + 5);
            assert_eq!(
                store.apply_status(&early).await.unwrap(),
                StatusApplied::UnknownMessage
            );
            let known = store.store_pending_status(&early, now + 5).await.unwrap();
            assert!(known.is_empty(), "msg_r{n}'s outcome has not committed");
        }
        blocker.rollback().await.unwrap();
        let taken = writer.await.unwrap();
        for (&n, (finished, kept)) in messages.iter().zip(&taken) {
            assert_eq!(*finished, Finished::Recorded { conversation: None });
            let kept: Vec<_> = kept
                .iter()
                .map(|u| (u.provider_message_id.clone(), u.status))
                .collect();
            assert_eq!(
                kept,
                [(Some(format!("wamid.r{n}")), MessageStatus::Sent)],
                "msg_r{n}'s outcome takes the status kept while it was written"
            );
        }
        assert_eq!(store.pending_status_count().await.unwrap(), 0);
    }
    drop(store);
    drop(db);
}
