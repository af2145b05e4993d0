//! Sends committed in groups.
//!
//! A send to a new number is one statement and a commit (a WAL flush) of its own. Concurrent
//! `accept_send` calls without an idempotency key are queued for one task per store that
//! takes everything waiting (up to [`MAX_GROUP`]) and decides it in one transaction, with a
//! fixed number of statements whatever the group's size:
//!
//! 1. the active conversations of every (channel, number) of the group, locked
//!    `FOR NO KEY UPDATE` in id order (as a lone send locks its number's);
//! 2. when some send may open a conversation: the open conversations past their window
//!    closed as expired, and the plan's counters of those sends locked, in (account, period)
//!    order, a missing one inserted at 0 (a counter a send would create is then locked too);
//! 3. the decisions, made in memory in the group's order by `decide_send`'s rules, each
//!    seeing the ones before it (a second send to a number the group opened a conversation
//!    for is `AlreadyPending`; the counter admits sends in order up to each one's limit);
//! 4. the contacts the accepted sends touch, inserted or locked in (account, number) order;
//! 5. everything written, from arrays, in one statement: contacts, counters, conversations'
//!    activity, new conversations (in (channel, number) order), messages, delivery jobs (in
//!    the group's order, so the queue keeps it) and one wake-up per channel.
//!
//! Locks are taken in the store's order: conversations, then counters, then contacts, each
//! kind sorted, so a group waits for other groups and lone sends as one send does. The
//! results and rows are those of the sends decided one by one in the group's order; only
//! the commit is shared. Nobody waits for a group to fill: a lone send runs at once as it
//! always did (`accept_alone`), and the sends that arrive meanwhile make the next group. If
//! anything in a group fails (another instance created a conversation for one of its numbers
//! meanwhile, a deadlock, an error of one send), the group is rolled back and each send runs
//! again alone, so a failure reaches its own caller only and results never depend on
//! grouping. Sends with an idempotency key do not come here: they run alone in their
//! caller's task (`accept_with`), as before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::*;

/// Most sends decided together.
const MAX_GROUP: usize = 256;

/// What the send group commit has done since the store opened.
#[derive(Debug, Default)]
pub struct SendGroupStats {
    /// Transactions committed for more than one send.
    pub groups: AtomicU64,
    /// Sends committed in those transactions.
    pub grouped_sends: AtomicU64,
    /// Groups rolled back (each send then ran alone).
    pub split: AtomicU64,
}

/// A send waiting for the group commit, with where its answer goes.
struct Queued {
    send: Box<AcceptSend>,
    to: oneshot::Sender<StoreResult<AcceptOutcome>>,
}

impl Queued {
    /// Whether the caller stopped waiting (it was then told nothing was written).
    fn abandoned(&self) -> bool {
        self.to.is_closed()
    }
}

/// The store's side of the group commit: the queue to its task.
pub(super) struct Sends {
    queue: mpsc::Sender<Queued>,
    stats: Arc<SendGroupStats>,
}

impl Sends {
    /// Starts the task that commits the sends of `pool`; it ends when `self` is dropped.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_GROUP * 4);
        let stats = Arc::new(SendGroupStats::default());
        tokio::spawn(combine(pool, waiting, stats.clone()));
        Self { queue, stats }
    }

    pub(super) fn stats(&self) -> &SendGroupStats {
        &self.stats
    }

    /// Queues `send` (one without an idempotency key) and waits for its answer.
    pub(super) async fn accept(&self, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
        let (to, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                send: Box::new(send.clone()),
                to,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the send writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the send writer dropped a send"))?
    }
}

/// Commits the queued sends in groups until the store is dropped.
async fn combine(pool: PgPool, mut queue: mpsc::Receiver<Queued>, stats: Arc<SendGroupStats>) {
    let mut group: Vec<Queued> = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        // A caller that stopped waiting was told nothing was written: its send must not be
        // written later behind its back.
        group.retain(|q| !q.abandoned());
        match group.len() {
            0 => {}
            1 => {
                let q = group.pop().expect("one");
                answer_alone(&pool, q).await;
            }
            n => {
                let sends: Vec<&AcceptSend> = group.iter().map(|q| q.send.as_ref()).collect();
                let abandoned = || group.iter().any(Queued::abandoned);
                match accept_group(&pool, &sends, abandoned).await {
                    Ok(outcomes) => {
                        stats.groups.fetch_add(1, Ordering::Relaxed);
                        stats.grouped_sends.fetch_add(n as u64, Ordering::Relaxed);
                        for (q, outcome) in group.drain(..).zip(outcomes) {
                            let _ = q.to.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        stats.split.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, sends = n, "send group commit failed; deciding one by one");
                        for q in group.drain(..) {
                            answer_alone(&pool, q).await;
                        }
                    }
                }
            }
        }
    }
}

/// Decides `q`'s send alone and answers its caller.
async fn answer_alone(pool: &PgPool, q: Queued) {
    if q.abandoned() {
        return;
    }
    let result = accept_alone(pool, &q.send).await;
    let _ = q.to.send(result);
}

/// One send without an idempotency key, decided alone: a send to a number with no active
/// conversation (read without a lock), the first message of every conversation, is one
/// statement outside a transaction: counter, contact, conversation, message and job commit
/// together. A conversation another send created meanwhile makes it fail on
/// `conversations_one_active` (`StoreError::Conflict`), and the send service decides it
/// again. Any other send is decided in a transaction of its own.
pub(super) async fn accept_alone(pool: &PgPool, send: &AcceptSend) -> StoreResult<AcceptOutcome> {
    let active: Option<String> = sqlx::query_scalar(
        "SELECT id FROM conversations
         WHERE channel_id = $1 AND phone_number = $2 AND active",
    )
    .bind(&send.channel_id)
    .bind(&send.phone_number)
    .fetch_optional(pool)
    .await?;
    if active.is_none() {
        let written = write_send(pool, send, None).await?;
        return Ok(pending_or_limit(send, written));
    }
    let mut tx = pool.begin().await?;
    let outcome = accept_in(&mut tx, send).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// A conversation of the group's numbers, as the group found it and then left it.
struct Active {
    id: String,
    pending: bool,
    last_activity_at: i64,
}

/// The group's (channel, number) → its active conversation, locked in id order.
const ACTIVE_CONVERSATIONS: &str = "SELECT c.id, c.channel_id, c.phone_number,
        c.status = 'pending' AS pending, c.last_activity_at
     FROM conversations c JOIN unnest($1::TEXT[], $2::TEXT[]) AS k (channel_id, phone_number)
       ON c.channel_id = k.channel_id AND c.phone_number = k.phone_number
     WHERE c.active
     ORDER BY c.id FOR NO KEY UPDATE OF c";

/// The open conversations past their window closed as expired (`$1`, `$2`), and the plan's
/// counters `$3`, `$4` locked in that order (the caller sorts them): a missing one is
/// inserted at 0, which locks it too; `inserted` says which (the group deletes those it
/// does not use). The no-op update is what locks an existing counter in the insert's order.
const CLOSE_AND_LOCK_COUNTERS: &str = "WITH closed AS (
        UPDATE conversations c SET status = 'closed', closed_at = e.at, close_reason = 'expired'
        FROM unnest($1::TEXT[], $2::BIGINT[]) AS e (id, at) WHERE c.id = e.id)
     INSERT INTO conversation_usage AS u (account_id, period, used)
     SELECT k.account_id, k.period, 0
     FROM unnest($3::TEXT[], $4::TEXT[]) WITH ORDINALITY AS k (account_id, period, n)
     ORDER BY k.n
     ON CONFLICT (account_id, period) DO UPDATE SET used = u.used
     RETURNING u.account_id, u.period, u.used, (u.xmax = 0) AS inserted";

/// The contacts the accepted sends touch, in the order the caller sorts them: a missing one
/// is inserted with what the group writes to it (`$3`–`$5`: its name after the group, the
/// first and the last send's time), an existing one is locked (a no-op update, in the
/// insert's order) and its name returned, to be written by [`WRITE_GROUP`].
const LOCK_CONTACTS: &str = "INSERT INTO contacts AS k (account_id, phone_number, client_name,
        created_at, updated_at)
     SELECT c.account_id, c.phone_number, c.client_name, c.created_at, c.updated_at
     FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[])
        WITH ORDINALITY AS c (account_id, phone_number, client_name, created_at, updated_at, n)
     ORDER BY c.n
     ON CONFLICT (account_id, phone_number) DO UPDATE SET client_name = k.client_name
     RETURNING k.account_id, k.phone_number, k.client_name, (k.xmax = 0) AS inserted";

/// Everything a group of sends writes, in one statement: the existing contacts' names and
/// times (`$1`–`$4`), the counters' increments (`$5`–`$7`) and the counters it inserted but
/// did not use (`$8`, `$9`), the open conversations' activity (`$10`, `$11`), the new
/// conversations (`$12`–`$20`), the messages and their jobs in the group's order
/// (`$21`–`$32`), and a wake-up per channel (`$34`, on `$33`, delivered on commit).
const WRITE_GROUP: &str = "WITH contact AS (
        UPDATE contacts k SET client_name = c.client_name, updated_at = c.updated_at
        FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[])
            AS c (account_id, phone_number, client_name, updated_at)
        WHERE k.account_id = c.account_id AND k.phone_number = c.phone_number),
     counted AS (
        UPDATE conversation_usage u SET used = u.used + k.added
        FROM unnest($5::TEXT[], $6::TEXT[], $7::BIGINT[]) AS k (account_id, period, added)
        WHERE u.account_id = k.account_id AND u.period = k.period),
     unused AS (
        DELETE FROM conversation_usage u
        USING unnest($8::TEXT[], $9::TEXT[]) AS k (account_id, period)
        WHERE u.account_id = k.account_id AND u.period = k.period),
     activity AS (
        UPDATE conversations c SET last_activity_at = a.at
        FROM unnest($10::TEXT[], $11::BIGINT[]) AS a (id, at) WHERE c.id = a.id),
     conversation AS (
        INSERT INTO conversations (id, account_id, channel_id, phone_number, status,
            assignee, group_id, client_name, first_message_id, created_at, last_activity_at)
        SELECT c.id, c.account_id, c.channel_id, c.phone_number, 'pending', c.assignee,
            c.group_id, c.client_name, c.first_message_id, c.at, c.at
        FROM unnest($12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[],
                    $17::TEXT[], $18::TEXT[], $19::TEXT[], $20::BIGINT[])
            WITH ORDINALITY AS c (id, account_id, channel_id, phone_number, assignee, group_id,
                                  client_name, first_message_id, at, n)
        ORDER BY c.n),
     m AS (
        SELECT * FROM unnest($21::TEXT[], $22::TEXT[], $23::TEXT[], $24::TEXT[], $25::TEXT[],
                             $26::TEXT[], $27::TEXT[], $28::BIGINT[], $29::TEXT[], $30::TEXT[],
                             $31::TEXT[], $32::BIGINT[])
            WITH ORDINALITY AS m (id, account_id, channel_id, conversation_id, template_id,
                                  phone_number, params, at, batch_id, callback_url, metadata,
                                  send_at, n)),
     message AS (
        INSERT INTO messages (id, account_id, channel_id, conversation_id, template_id,
            phone_number, params, status, queued_at, updated_at, batch_id, callback_url,
            metadata, scheduled_for)
        SELECT m.id, m.account_id, m.channel_id, m.conversation_id, m.template_id,
            m.phone_number, m.params,
            CASE WHEN m.send_at IS NULL THEN 'queued' ELSE 'scheduled' END,
            m.at, m.at, m.batch_id, m.callback_url, m.metadata, m.send_at
        FROM m ORDER BY m.n),
     job AS (
        INSERT INTO delivery_jobs (message_id, channel_id, run_at)
        SELECT m.id, m.channel_id, coalesce(m.send_at, m.at) FROM m ORDER BY m.n)
     SELECT pg_notify($33, w.channel_id)
     FROM (SELECT DISTINCT unnest($34::TEXT[]) AS channel_id) w";

/// The sends of a group that touch one contact, in order: the name each gave, its time.
type Touches<'a> = Vec<(Option<&'a str>, i64)>;

/// What one send of a group does, as decided in memory.
enum Decided {
    /// Nothing written (`AlreadyPending`, `LimitReached`).
    Nothing,
    /// A message on the open conversation.
    Sent(String),
    /// A new pending conversation with the message.
    New,
}

/// `sends` (none with an idempotency key) in one transaction, answered in their order: the
/// outcomes of the sends decided one by one in that order. Nothing is kept if any of it
/// fails, or if `abandoned()` says a caller stopped waiting before the commit.
pub(super) async fn accept_group(
    pool: &PgPool,
    sends: &[&AcceptSend],
    abandoned: impl Fn() -> bool,
) -> StoreResult<Vec<AcceptOutcome>> {
    if sends.iter().any(|s| s.idempotency.is_some()) {
        return Err(anyhow::anyhow!("a send with an idempotency key is decided alone").into());
    }
    let mut tx = pool.begin().await?;

    // 1. The numbers' active conversations, locked.
    let mut numbers: Vec<(&str, &str)> = sends
        .iter()
        .map(|s| (s.channel_id.as_str(), s.phone_number.as_str()))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    let (channels, phones): (Vec<&str>, Vec<&str>) = numbers.iter().copied().unzip();
    let mut active: HashMap<(String, String), Active> = HashMap::new();
    for r in sqlx::query(ACTIVE_CONVERSATIONS)
        .bind(&channels)
        .bind(&phones)
        .fetch_all(&mut *tx)
        .await?
    {
        active.insert(
            (r.try_get("channel_id")?, r.try_get("phone_number")?),
            Active {
                id: r.try_get("id")?,
                pending: r.try_get("pending")?,
                last_activity_at: r.try_get("last_activity_at")?,
            },
        );
    }

    // 2. Which sends may open a conversation (those to a number with none, or with an open
    //    one past a send's window): their counters are locked before anything is decided.
    //    Expired conversations are closed whatever the counter decides, as `decide_send`
    //    closes one before it counts.
    let may_open: HashSet<(&str, &str)> = sends
        .iter()
        .filter(
            |s| match active.get(&(s.channel_id.clone(), s.phone_number.clone())) {
                None => true,
                Some(c) => !c.pending && c.last_activity_at < s.expire_before,
            },
        )
        .map(|s| (s.channel_id.as_str(), s.phone_number.as_str()))
        .collect();
    let counter_keys: Vec<(&str, &str)> = sends
        .iter()
        .filter(|s| may_open.contains(&(s.channel_id.as_str(), s.phone_number.as_str())))
        .map(|s| (s.account_id.as_str(), s.period.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // (used, inserted by this group) per counter.
    let mut counters: HashMap<(String, String), (i64, bool)> = HashMap::new();
    // Expired conversations are known only in order (a send's window is its own), so they
    // are found in the decisions below; the first send to each decides.
    let mut expired: Vec<(String, i64)> = Vec::new();
    {
        let mut seen: HashSet<&str> = HashSet::new();
        for s in sends {
            if let Some(c) = active.get(&(s.channel_id.clone(), s.phone_number.clone()))
                && !c.pending
                && seen.insert(c.id.as_str())
                && c.last_activity_at < s.expire_before
            {
                expired.push((c.id.clone(), s.now));
            }
        }
    }
    if !counter_keys.is_empty() {
        let (accounts, periods): (Vec<&str>, Vec<&str>) = counter_keys.iter().copied().unzip();
        let (ids, ats): (Vec<&str>, Vec<i64>) =
            expired.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
        for r in sqlx::query(CLOSE_AND_LOCK_COUNTERS)
            .bind(&ids)
            .bind(&ats)
            .bind(&accounts)
            .bind(&periods)
            .fetch_all(&mut *tx)
            .await?
        {
            counters.insert(
                (r.try_get("account_id")?, r.try_get("period")?),
                (r.try_get("used")?, r.try_get("inserted")?),
            );
        }
    } else if !expired.is_empty() {
        return Err(anyhow::anyhow!("an expired conversation without a counter").into());
    }

    // 3. The decisions, in order.
    let expired_ids: HashSet<&str> = expired.iter().map(|(id, _)| id.as_str()).collect();
    let mut added: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut decided: Vec<Decided> = Vec::with_capacity(sends.len());
    let mut outcomes: Vec<AcceptOutcome> = Vec::with_capacity(sends.len());
    let mut activity: BTreeMap<String, i64> = BTreeMap::new();
    for &send in sends {
        let key = (send.channel_id.clone(), send.phone_number.clone());
        if let Some(c) = active.get(&key)
            && !c.pending
            && c.last_activity_at < send.expire_before
        {
            // Closed as expired by step 2 (the first send to it found it so).
            if !expired_ids.contains(c.id.as_str()) {
                return Err(anyhow::anyhow!("a conversation expired within the group").into());
            }
            active.remove(&key);
        }
        match active.get_mut(&key) {
            Some(c) if c.pending => {
                outcomes.push(AcceptOutcome::AlreadyPending {
                    conversation_id: c.id.clone(),
                });
                decided.push(Decided::Nothing);
            }
            Some(c) => {
                c.last_activity_at = send.now;
                activity.insert(c.id.clone(), send.now);
                outcomes.push(AcceptOutcome::Sent {
                    conversation_id: c.id.clone(),
                    message_id: send.new_message_id.clone(),
                });
                decided.push(Decided::Sent(c.id.clone()));
            }
            None => {
                let counter = (send.account_id.clone(), send.period.clone());
                let Some(&(used, _)) = counters.get(&counter) else {
                    return Err(anyhow::anyhow!("a counter the group did not lock").into());
                };
                let taken = added.entry(counter).or_insert(0);
                if used + *taken >= send.conversation_limit {
                    outcomes.push(AcceptOutcome::LimitReached);
                    decided.push(Decided::Nothing);
                    continue;
                }
                *taken += 1;
                active.insert(
                    key,
                    Active {
                        id: send.new_conversation_id.clone(),
                        pending: true,
                        last_activity_at: send.now,
                    },
                );
                outcomes.push(AcceptOutcome::Pending {
                    conversation_id: send.new_conversation_id.clone(),
                    message_id: send.new_message_id.clone(),
                });
                decided.push(Decided::New);
            }
        }
    }
    if decided.iter().all(|d| matches!(d, Decided::Nothing)) && expired.is_empty() {
        // Nothing to write, as nothing is one by one (the counters inserted here go with
        // the rollback).
        tx.rollback().await?;
        return Ok(outcomes);
    }

    // 4. The contacts the written sends touch: (name given, time) per send, in order.
    let mut touches: BTreeMap<(&str, &str), Touches> = BTreeMap::new();
    for (send, d) in sends.iter().zip(&decided) {
        if !matches!(d, Decided::Nothing) {
            touches
                .entry((send.account_id.as_str(), send.phone_number.as_str()))
                .or_default()
                .push((send.client_name.as_deref(), send.now));
        }
    }
    // A contact's name after its touches, from the name it had (`None`: no contact).
    let name_after = |phone: &str, had: Option<&str>, given: &Touches| {
        given
            .iter()
            .rev()
            .find_map(|(name, _)| *name)
            .or(had)
            .unwrap_or(phone)
            .to_string()
    };
    // (name it had, inserted by this group) per contact.
    let mut contacts: HashMap<(String, String), (String, bool)> = HashMap::new();
    if !touches.is_empty() {
        let mut accounts = Vec::with_capacity(touches.len());
        let mut phones = Vec::with_capacity(touches.len());
        let mut names = Vec::with_capacity(touches.len());
        let mut firsts = Vec::with_capacity(touches.len());
        let mut lasts = Vec::with_capacity(touches.len());
        for ((account, phone), given) in &touches {
            accounts.push(*account);
            phones.push(*phone);
            names.push(name_after(phone, None, given));
            firsts.push(given.first().map_or(0, |(_, at)| *at));
            lasts.push(given.last().map_or(0, |(_, at)| *at));
        }
        for r in sqlx::query(LOCK_CONTACTS)
            .bind(&accounts)
            .bind(&phones)
            .bind(&names)
            .bind(&firsts)
            .bind(&lasts)
            .fetch_all(&mut *tx)
            .await?
        {
            contacts.insert(
                (r.try_get("account_id")?, r.try_get("phone_number")?),
                (r.try_get("client_name")?, r.try_get("inserted")?),
            );
        }
    }
    // The existing contacts' names and times after the group.
    let mut contact_rows: (Vec<&str>, Vec<&str>, Vec<String>, Vec<i64>) = Default::default();
    for ((account, phone), given) in &touches {
        let (had, inserted) = contacts
            .get(&(account.to_string(), phone.to_string()))
            .ok_or_else(|| anyhow::anyhow!("a contact the group did not lock"))?;
        if !inserted {
            contact_rows.0.push(*account);
            contact_rows.1.push(*phone);
            contact_rows.2.push(name_after(phone, Some(had), given));
            contact_rows.3.push(given.last().map_or(0, |(_, at)| *at));
        }
    }

    // 5. Everything written. New conversations are named after their contact as the send
    //    left it, in (channel, number) order (the unique index's, so two groups inserting
    //    the same numbers wait for each other in one order).
    let mut named: HashMap<(String, String), Option<String>> = contacts
        .iter()
        .map(|(key, (had, inserted))| (key.clone(), (!inserted).then(|| had.clone())))
        .collect();
    let mut conversations: Vec<(&AcceptSend, String)> = Vec::new();
    for (&send, d) in sends.iter().zip(&decided) {
        if matches!(d, Decided::Nothing) {
            continue;
        }
        let current = named
            .entry((send.account_id.clone(), send.phone_number.clone()))
            .or_default();
        let name = send
            .client_name
            .clone()
            .or_else(|| current.clone())
            .unwrap_or_else(|| send.phone_number.clone());
        *current = Some(name.clone());
        if matches!(d, Decided::New) {
            conversations.push((send, name));
        }
    }
    conversations.sort_by(|a, b| {
        (&a.0.channel_id, &a.0.phone_number).cmp(&(&b.0.channel_id, &b.0.phone_number))
    });

    let mut used_counters: (Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    let mut unused_counters: (Vec<&str>, Vec<&str>) = Default::default();
    for ((account, period), (_, inserted)) in &counters {
        match added.get(&(account.clone(), period.clone())) {
            Some(&n) if n > 0 => {
                used_counters.0.push(account);
                used_counters.1.push(period);
                used_counters.2.push(n);
            }
            _ if *inserted => {
                unused_counters.0.push(account);
                unused_counters.1.push(period);
            }
            _ => {}
        }
    }
    let (activity_ids, activity_ats): (Vec<&str>, Vec<i64>) =
        activity.iter().map(|(id, at)| (id.as_str(), *at)).unzip();

    let written: Vec<(&AcceptSend, &str)> = sends
        .iter()
        .zip(&decided)
        .filter_map(|(&send, d)| match d {
            Decided::Nothing => None,
            Decided::Sent(conversation) => Some((send, conversation.as_str())),
            Decided::New => Some((send, send.new_conversation_id.as_str())),
        })
        .collect();
    let params: Vec<String> = written
        .iter()
        .map(|(send, _)| serde_json::to_string(&send.params).context("params"))
        .collect::<Result<_, _>>()?;
    let woken: Vec<&str> = written.iter().map(|(s, _)| s.channel_id.as_str()).collect();

    sqlx::query(WRITE_GROUP)
        .bind(&contact_rows.0)
        .bind(&contact_rows.1)
        .bind(&contact_rows.2)
        .bind(&contact_rows.3)
        .bind(&used_counters.0)
        .bind(&used_counters.1)
        .bind(&used_counters.2)
        .bind(&unused_counters.0)
        .bind(&unused_counters.1)
        .bind(&activity_ids)
        .bind(&activity_ats)
        .bind(col(&conversations, |(s, _)| s.new_conversation_id.as_str()))
        .bind(col(&conversations, |(s, _)| s.account_id.as_str()))
        .bind(col(&conversations, |(s, _)| s.channel_id.as_str()))
        .bind(col(&conversations, |(s, _)| s.phone_number.as_str()))
        .bind(col(&conversations, |(s, _)| s.assignee))
        .bind(col(&conversations, |(s, _)| s.group_id.as_deref()))
        .bind(col(&conversations, |(_, name)| name.as_str()))
        .bind(col(&conversations, |(s, _)| s.new_message_id.as_str()))
        .bind(col(&conversations, |(s, _)| s.now))
        .bind(col(&written, |(s, _)| s.new_message_id.as_str()))
        .bind(col(&written, |(s, _)| s.account_id.as_str()))
        .bind(col(&written, |(s, _)| s.channel_id.as_str()))
        .bind(col(&written, |(_, conversation)| *conversation))
        .bind(col(&written, |(s, _)| s.template_id.as_str()))
        .bind(col(&written, |(s, _)| s.phone_number.as_str()))
        .bind(&params)
        .bind(col(&written, |(s, _)| s.now))
        .bind(col(&written, |(s, _)| s.batch_id.as_deref()))
        .bind(col(&written, |(s, _)| s.callback_url.as_deref()))
        .bind(col(&written, |(s, _)| {
            s.metadata.as_ref().map(|v| v.to_string())
        }))
        .bind(col(&written, |(s, _)| s.send_at))
        .bind(WORK_CHANNEL)
        .bind(&woken)
        .execute(&mut *tx)
        .await?;
    if abandoned() {
        // Someone stopped waiting: their send must not commit, the others' may (alone).
        tx.rollback().await?;
        return Err(anyhow::anyhow!("a caller stopped waiting").into());
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// One column of `rows`, for a statement that reads it as an array.
fn col<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}
