//! The apply lease: an apply lock kept in the Dynatrace environment (or account) itself, so that
//! two applies from different machines (two CI runners, a laptop and a pipeline) never both act
//! on one environment or account, with nothing shared but Dynatrace.
//!
//! A lease is a disabled, short-lived token (the system token `tokensmith.lease`, see
//! `model::system_token`): an API token in an environment, a platform token in an account
//! ([`board`] keeps the difference). It is named
//! `tokensmith apply lease <state> <user@host> pid <pid> [ts:tokensmith.lease#<nonce>]`, where
//! `<state>` is `pending` or `active` and `<nonce>` is a random number that is the lock id
//! `force-unlock` quotes. It holds no secret: its value is dropped at creation and the token is
//! disabled at once. Taking the lease of an environment:
//!
//! 1. list the tokens; an *active* lease of another live holder means the environment is busy;
//! 2. create our lease (pending, expiring [`LEASE_LIFETIME`] after the server's clock) and
//!    disable it;
//! 3. list again: if another live lease is older by (creationDate, token id), or active, delete
//!    ours and back off; otherwise wait [`SETTLE`] and list once more with the same test;
//! 4. rename ours to `active` (an account's lease is made again under that name, see
//!    [`board`]), then list a last time: if any other live lease is active, delete
//!    ours and back off; otherwise the environment is ours until we delete the lease.
//!
//! A live lease is one that has not expired by the server's clock and whose holder is not a
//! process on this machine that no longer runs; other leases are ignored and deleted by whoever
//! sees them. Backing off fails with [`LockError::Held`] naming the holder and since when, or
//! retries after a random pause until the `--lock-timeout` runs out.
//!
//! Why two holders never both act, under any interleaving of concurrent creates: each applier
//! writes before it reads (its lease is created, then activated, before the list it decides on),
//! and Dynatrace's token list reads its own and everyone's completed writes. Suppose A and B both
//! act; each activated its lease and then listed without seeing another active lease. Say A's
//! activation completed first. B's final list came after B's activation, hence after A's; A's
//! lease was still there (A deletes it only when done, and it had not expired: every reader
//! judges expiry by the one server clock), so B saw it active and backed off — a contradiction.
//! Safety rests on that step alone. Steps 1 to 3 make the usual race end with exactly one
//! winner instead of two that both back off: the order (creationDate, id) is total and the same
//! for every reader, so of leases that see each other only the oldest goes on to activate, and
//! the settle delay lets a lease created at about the same time become visible before the
//! oldest commits. When clocks tie and a newcomer sorts first while the older one is already
//! activating, both may see the other active and back off; that is safe, and both try again
//! after a random pause (a few times even when not waiting, since neither holds anything).
//!
//! A lease lasts an hour and is not renewed; an apply stops starting steps
//! [`STOP_STARTING_BEFORE_LEASE_ENDS`] before that (applies take seconds to minutes; a longer
//! one ends early with the rest for the next run), so no step runs unprotected. A crashed holder's lease stops counting when it expires,
//! at once on the same machine, or when `tokensmith force-unlock ENV NONCE` deletes it (for an
//! account, `ENV` is `account-NAME`, the name its local lock has). "The
//! same machine" is judged by host name and process id, as for the local file lock: runners
//! that share a host name but not a process table (containers given one fixed `hostname`)
//! would see each other's leases as dead, so give them distinct host names.
//!
//! An account's lease is one of the 10 platform tokens Dynatrace allows its owner (the OAuth
//! client's user) while the apply runs; the plan made under it counts it like any other token.
//!
//! Not here: choosing when leases are used (`super::Locks`, the `apply` command), and the
//! planner's ignoring of system tokens (`plan`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use std::time::{Duration, Instant};

use rand::Rng;
use time::OffsetDateTime;

pub mod board;

pub use board::{AccountBoard, EnvironmentBoard, LeaseBoard};

use super::backend::{HeldLock, LockBackend};
use super::error::LockError;
use super::holder::LockInfo;
use crate::live::LiveError;
use crate::model::token::MAX_NAME_LEN;
use crate::model::{EnvName, LiveToken, Marker, SystemToken, TokenId, TokenKind};

/// How long a lease lasts when its holder never deletes it (a crash on another machine).
pub const LEASE_LIFETIME: Duration = Duration::from_secs(3600);

/// How long before its leases run out an apply stops starting steps: longer than any one step
/// takes (an HTTP call's deadline with its retries, an exec target's timeout), so every step
/// that started under the lease also ends under it.
pub const STOP_STARTING_BEFORE_LEASE_ENDS: Duration = Duration::from_secs(10 * 60);

/// How long the oldest lease waits for leases created at about the same time to show.
pub const SETTLE: Duration = Duration::from_millis(300);

/// The display words before a lease's state.
const LEASE_PREFIX: &str = "tokensmith apply lease";

/// Failures of the apply lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseLockError {
    /// A call failed; the error names the environment or account and the request.
    #[error("apply lease")]
    Api(#[source] LiveError),
    #[error("apply lease of {place}: the lease just created ({id}) is not in the token list; run the command again")]
    Vanished { place: String, id: TokenId },
}

/// Connects to the place a lock name's leases are kept when its lease is first needed.
pub type LeaseConnect = Arc<
    dyn Fn(&EnvName) -> BoxFuture<'static, Result<Arc<dyn LeaseBoard>, LiveError>> + Send + Sync,
>;

/// The leases of the environments and accounts one apply acts on, by lock name (an account's
/// is `account-NAME`, as for its local lock): how to reach each (connected only when its lease
/// is taken, after the layers before it: an embedded sandbox then starts from the state the
/// previous holder left) and the runtime the calls run on.
#[derive(Clone)]
pub struct Leases {
    names: BTreeSet<EnvName>,
    connect: LeaseConnect,
    boards: Arc<Mutex<BTreeMap<EnvName, Arc<dyn LeaseBoard>>>>,
    runtime: tokio::runtime::Handle,
    settle: Duration,
}

impl fmt::Debug for Leases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases")
            .field("names", &self.names)
            .finish()
    }
}

impl Leases {
    /// Leases for each lock name of `names`, kept where `connect` reaches; calls run on
    /// `runtime` (a multi-thread runtime: the lock's calls block the calling thread until they
    /// finish).
    pub fn new(
        names: impl IntoIterator<Item = EnvName>,
        connect: LeaseConnect,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Leases {
            names: names.into_iter().collect(),
            connect,
            boards: Arc::default(),
            runtime,
            settle: SETTLE,
        }
    }

    /// The board of `name`, connecting on first use; `None` for a name this backend does not
    /// keep.
    fn board(&self, name: &EnvName) -> Result<Option<Arc<dyn LeaseBoard>>, LockError> {
        if !self.names.contains(name) {
            return Ok(None);
        }
        let mut boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(board) = boards.get(name) {
            return Ok(Some(board.clone()));
        }
        let board = block_on(&self.runtime, (self.connect)(name))
            .map_err(|source| LockError::from(LeaseLockError::Api(source)))?;
        boards.insert(name.clone(), board.clone());
        Ok(Some(board))
    }
}

/// Run `fut` to completion on `runtime` from synchronous code, on a thread of its own so that a
/// caller inside another runtime (a lock dropped in async code) does not panic.
fn block_on<F>(runtime: &tokio::runtime::Handle, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(fut))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A lease as read from a token list.
#[derive(Debug, Clone)]
struct Lease {
    id: TokenId,
    nonce: String,
    active: bool,
    created: OffsetDateTime,
    info: LockInfo,
    expires: Option<OffsetDateTime>,
}

impl Lease {
    /// The lease a token of a board keeping `kind` is, if it is one.
    fn of(env: &EnvName, kind: TokenKind, t: &LiveToken) -> Option<Lease> {
        if t.kind != kind {
            return None;
        }
        let marker = Marker::parse_name(&t.name)?;
        if SystemToken::of_marker(&marker) != Some(SystemToken::ApplyLease) {
            return None;
        }
        let words: Vec<&str> = Marker::display_part(&t.name).split_whitespace().collect();
        let state = words.get(3).copied().unwrap_or("");
        let holder = words.get(4).copied().unwrap_or("unknown").to_owned();
        let host = holder
            .split_once('@')
            .map_or("unknown", |(_, h)| h)
            .to_owned();
        let pid = match (words.get(5), words.get(6)) {
            (Some(&"pid"), Some(pid)) => pid.parse().unwrap_or(0),
            _ => 0,
        };
        // A lease without a creation date counts as the oldest: the others back off.
        let created = t.created.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let nonce = marker.generation.to_string();
        Some(Lease {
            id: t.id.clone(),
            active: state == "active",
            created,
            expires: t.expires,
            info: LockInfo {
                id: nonce.clone(),
                environment: env.clone(),
                holder,
                host,
                pid,
                commit: None,
                created_at: created,
                // A lease lives in the environment, so no remote is needed to release it.
                lock_remote: None,
            },
            nonce,
        })
    }

    /// Whether the lease still counts at `now` (server time): not expired, and not held by a
    /// process on this machine that no longer runs.
    fn live(&self, now: OffsetDateTime) -> bool {
        self.expires.is_none_or(|e| e > now)
            && !(self.info.pid != 0 && self.info.holder_is_dead_here())
    }

    fn order(&self) -> (OffsetDateTime, &str) {
        (self.created, self.id.as_str())
    }
}

/// The full name of a lease.
fn lease_name(active: bool, info: &LockInfo) -> String {
    let state = if active { "active" } else { "pending" };
    let nonce: u32 = info.id.parse().expect("lease ids are numbers");
    let marker = Marker::new(
        SystemToken::ApplyLease.key(),
        crate::model::Generation(nonce),
    );
    // One word per field, so that the name reads back (a login may hold a space).
    let holder: String = info
        .holder
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    marker.name_with(
        &format!("{LEASE_PREFIX} {state} {holder} pid {}", info.pid),
        MAX_NAME_LEN,
    )
}

/// A fresh lease nonce: a random number without leading zero (a marker generation).
fn lease_nonce() -> String {
    rand::rng()
        .random_range(1_000_000_000u32..=u32::MAX)
        .to_string()
}

/// What a look at the token list decided.
enum Verdict {
    /// Ours is the lease that goes on.
    Ours,
    /// Another live lease wins; ours must go.
    Theirs(Box<LockInfo>),
}

/// Whether the lease `mine` goes on, given the live leases of `place`: not when another is
/// active, nor when another is older by (creationDate, token id).
fn judge(place: &str, leases: &[Lease], mine: &TokenId) -> Result<Verdict, LockError> {
    let ours = leases
        .iter()
        .find(|l| &l.id == mine)
        .ok_or_else(|| LeaseLockError::Vanished {
            place: place.to_owned(),
            id: mine.clone(),
        })?;
    let others = leases.iter().filter(|l| &l.id != mine);
    if let Some(active) = others.clone().find(|l| l.active) {
        return Ok(Verdict::Theirs(Box::new(active.info.clone())));
    }
    match others.min_by(|a, b| a.order().cmp(&b.order())) {
        Some(older) if older.order() < ours.order() => {
            Ok(Verdict::Theirs(Box::new(older.info.clone())))
        }
        _ => Ok(Verdict::Ours),
    }
}

/// Why a try backed off.
enum Loss {
    /// Another lease holds the environment or comes first.
    Held(Box<LockInfo>),
    /// Ours and another were activated at the same moment, and both back off: the other may be
    /// gone already, so a try again is worth it even without waiting.
    Collided(Box<LockInfo>),
}

/// How many collisions one acquire retries past its deadline.
const COLLISION_RETRIES: u32 = 3;

/// One lock name's lease protocol, on the board that keeps its leases.
struct Attempt<'a> {
    env: &'a EnvName,
    board: &'a dyn LeaseBoard,
}

impl Attempt<'_> {
    fn api(&self, source: LiveError) -> LockError {
        LeaseLockError::Api(source).into()
    }

    /// Every lease of the board, the expired and dead ones deleted, and the server's time.
    async fn leases(&self) -> Result<(Vec<Lease>, OffsetDateTime), LockError> {
        let tokens = self.board.list().await.map_err(|e| self.api(e))?;
        let now = self
            .board
            .server_time()
            .unwrap_or_else(OffsetDateTime::now_utc);
        let kind = self.board.kind();
        let mut live = Vec::new();
        for lease in tokens.iter().filter_map(|t| Lease::of(self.env, kind, t)) {
            if lease.live(now) {
                live.push(lease);
            } else {
                // Nobody counts it any more; whoever sees it first clears it away.
                let _ = self.board.delete(&lease.id).await;
            }
        }
        Ok((live, now))
    }

    fn judge(&self, leases: &[Lease], mine: &TokenId) -> Result<Verdict, LockError> {
        judge(self.board.place(), leases, mine)
    }

    /// One try: `Ok(Ok(lease token))` when ours is active and alone, `Ok(Err(loss))` when we
    /// backed off (our lease deleted).
    async fn once(
        &self,
        info: &LockInfo,
        settle: Duration,
    ) -> Result<Result<TokenId, Loss>, LockError> {
        let (leases, now) = self.leases().await?;
        if let Some(active) = leases.iter().find(|l| l.active) {
            return Ok(Err(Loss::Held(Box::new(active.info.clone()))));
        }
        let mut mine = self.create_lease(info, now).await?;
        let outcome = self.contend(info, &mut mine, settle).await;
        match &outcome {
            Ok(Ok(())) => {}
            // Ours was renamed or made again, or failed half way: find it by its nonce.
            Err(_) => self.remove_nonce(&info.id).await,
            Ok(Err(_)) => {
                let _ = self.board.delete(&mine).await;
            }
        }
        Ok(match outcome? {
            Ok(()) => Ok(mine),
            Err(holder) => Err(holder),
        })
    }

    /// Make our lease (step 1). A create whose answer was lost (a dropped connection, a
    /// proxy's 503) may have taken effect: the lease is then looked for by its nonce, and made
    /// again only when it is not there, as an apply does with a token's marker. Two tries after
    /// the first; then every lease with our nonce is removed, so that none holds the
    /// environment until it expires, and the error stands.
    async fn create_lease(
        &self,
        info: &LockInfo,
        now: OffsetDateTime,
    ) -> Result<TokenId, LockError> {
        let mut tries = 0;
        let failed = loop {
            tries += 1;
            // The value is never read: the lease is a name and a date, not a credential.
            let e = match self
                .board
                .create(lease_name(false, info), now + LEASE_LIFETIME)
                .await
            {
                Ok(id) => return Ok(id),
                Err(e) if e.is_ambiguous() => e,
                Err(e) => break e,
            };
            let Ok((leases, _)) = self.leases().await else {
                break e;
            };
            let ours: Vec<&Lease> = leases.iter().filter(|l| l.nonce == info.id).collect();
            match ours.as_slice() {
                [one] => return Ok(one.id.clone()),
                [] if tries < 3 => continue,
                _ => break e,
            }
        };
        self.remove_nonce(&info.id).await;
        Err(self.api(failed))
    }

    /// Delete every lease carrying `nonce`, best effort.
    async fn remove_nonce(&self, nonce: &str) {
        let Ok(tokens) = self.board.list().await else {
            return;
        };
        let kind = self.board.kind();
        for lease in tokens.iter().filter_map(|t| Lease::of(self.env, kind, t)) {
            if lease.nonce == nonce {
                let _ = self.board.delete(&lease.id).await;
            }
        }
    }

    /// Steps 2 to 4 of the protocol for our lease `mine` (its id updated when activation makes
    /// it again).
    async fn contend(
        &self,
        info: &LockInfo,
        mine: &mut TokenId,
        settle: Duration,
    ) -> Result<Result<(), Loss>, LockError> {
        self.board.disable(mine).await.map_err(|e| self.api(e))?;
        for pause in [Duration::ZERO, settle] {
            tokio::time::sleep(pause).await;
            if let Verdict::Theirs(holder) = self.judge(&self.leases().await?.0, mine)? {
                return Ok(Err(Loss::Held(holder)));
            }
        }
        let expires = self
            .board
            .server_time()
            .unwrap_or_else(OffsetDateTime::now_utc)
            + LEASE_LIFETIME;
        *mine = self
            .board
            .rename(mine, lease_name(true, info), expires)
            .await
            .map_err(|e| self.api(e))?;
        let (leases, _) = self.leases().await?;
        if !leases.iter().any(|l| &l.id == mine) {
            return Err(LeaseLockError::Vanished {
                place: self.board.place().to_owned(),
                id: mine.clone(),
            }
            .into());
        }
        if let Some(active) = leases.iter().find(|l| l.active && &l.id != mine) {
            return Ok(Err(Loss::Collided(Box::new(active.info.clone()))));
        }
        Ok(Ok(()))
    }
}

impl LockBackend for Leases {
    fn keeps(&self, env: &EnvName) -> bool {
        self.names.contains(env)
    }

    fn acquire(
        &self,
        env: &EnvName,
        commit: Option<String>,
        wait: Duration,
    ) -> Result<Box<dyn HeldLock>, LockError> {
        let Some(board) = self.board(env)? else {
            return Err(LockError::NotLocked { env: env.clone() });
        };
        let mut info = LockInfo::for_this_process(env, commit);
        info.id = lease_nonce();
        let attempt = Attempt {
            env,
            board: board.as_ref(),
        };
        let deadline = Instant::now() + wait;
        let mut collisions = 0;
        loop {
            let holder = match block_on(&self.runtime, attempt.once(&info, self.settle))? {
                Ok(token) => {
                    return Ok(Box::new(HeldLease {
                        board: board.clone(),
                        runtime: self.runtime.clone(),
                        token,
                        info,
                        released: false,
                    }))
                }
                Err(Loss::Collided(_)) if collisions < COLLISION_RETRIES => {
                    collisions += 1;
                    let pause = Duration::from_millis(rand::rng().random_range(50..800));
                    std::thread::sleep(pause);
                    continue;
                }
                Err(Loss::Held(holder) | Loss::Collided(holder)) => holder,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LockError::Held(holder));
            }
            let pause = Duration::from_millis(rand::rng().random_range(200..1200));
            std::thread::sleep(pause.min(left));
        }
    }

    fn current(&self, env: &EnvName) -> Result<Option<LockInfo>, LockError> {
        let Some(board) = self.board(env)? else {
            return Ok(None);
        };
        let attempt = Attempt {
            env,
            board: board.as_ref(),
        };
        let (mut leases, _) = block_on(&self.runtime, attempt.leases())?;
        leases.sort_by(|a, b| (!a.active, a.order()).cmp(&(!b.active, b.order())));
        Ok(leases.into_iter().next().map(|l| l.info))
    }

    fn force_unlock(&self, env: &EnvName, id: &str) -> Result<LockInfo, LockError> {
        let Some(board) = self.board(env)? else {
            return Err(LockError::NotLocked { env: env.clone() });
        };
        let attempt = Attempt {
            env,
            board: board.as_ref(),
        };
        block_on(&self.runtime, async {
            let (leases, _) = attempt.leases().await?;
            let mut released = None;
            // A holder that died while activating an account's lease may have left two.
            for lease in leases.iter().filter(|l| l.nonce == id) {
                board.delete(&lease.id).await.map_err(|e| attempt.api(e))?;
                released.get_or_insert_with(|| lease.info.clone());
            }
            released.ok_or_else(|| match leases.first() {
                Some(other) => LockError::WrongId {
                    env: env.clone(),
                    given: id.to_owned(),
                    actual: other.nonce.clone(),
                },
                None => LockError::NotLocked { env: env.clone() },
            })
        })
    }
}

/// A lease this process holds; deleted when released or dropped.
struct HeldLease {
    board: Arc<dyn LeaseBoard>,
    runtime: tokio::runtime::Handle,
    token: TokenId,
    info: LockInfo,
    released: bool,
}

impl fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldLease")
            .field("token", &self.token)
            .field("info", &self.info)
            .finish()
    }
}

impl HeldLease {
    fn delete(&mut self) -> Result<(), LockError> {
        self.released = true;
        let board = self.board.clone();
        let token = self.token.clone();
        block_on(&self.runtime, async move { board.delete(&token).await })
            .map_err(|source| LeaseLockError::Api(source).into())
    }
}

impl HeldLock for HeldLease {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn release(mut self: Box<Self>) -> Result<(), LockError> {
        self.delete()
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.delete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, name: &str, created: OffsetDateTime, ttl_h: i64) -> LiveToken {
        LiveToken {
            kind: TokenKind::ApiToken,
            id: TokenId::new(id),
            name: name.to_owned(),
            enabled: false,
            owner: None,
            personal_access_token: false,
            created: Some(created),
            modified: None,
            expires: Some(created + time::Duration::hours(ttl_h)),
            last_used: None,
            last_used_from: None,
            scopes: crate::model::ScopeSet::new(),
            activegate_type: None,
            seed: false,
            resources: Vec::new(),
        }
    }

    fn info(holder: &str, pid: u32, nonce: &str) -> LockInfo {
        let env = EnvName::new("prod");
        let mut info = LockInfo::for_this_process(&env, None);
        info.holder = holder.to_owned();
        info.pid = pid;
        info.id = nonce.to_owned();
        info
    }

    #[test]
    fn a_lease_name_round_trips_and_carries_no_secret_shape() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let spaced = lease_name(false, &info("Jo Doe@runner-7", 1, "1234567890"));
        assert!(spaced.starts_with("tokensmith apply lease pending Jo_Doe@runner-7 pid 1 "));
        let name = lease_name(true, &info("ci@runner-7", 4242, "1234567890"));
        assert_eq!(
            name,
            "tokensmith apply lease active ci@runner-7 pid 4242 [ts:tokensmith.lease#1234567890]"
        );
        let lease = Lease::of(
            &EnvName::new("prod"),
            TokenKind::ApiToken,
            &token("dt0c01.L", &name, t0, 1),
        )
        .unwrap();
        assert!(lease.active);
        assert_eq!(lease.nonce, "1234567890");
        assert_eq!(lease.info.holder, "ci@runner-7");
        assert_eq!(lease.info.host, "runner-7");
        assert_eq!(lease.info.pid, 4242);
        assert_eq!(lease.info.created_at, t0);
        // Expired by the server's clock: no longer counts.
        assert!(lease.live(t0));
        assert!(!lease.live(t0 + time::Duration::hours(1)));
        // Not a lease: a user token, or a tenant-rotation record.
        let user = token("dt0c01.U", "ci [ts:ci#3]", t0, 1);
        assert!(Lease::of(&EnvName::new("prod"), TokenKind::ApiToken, &user).is_none());
        let rotation = token("dt0c01.R", "x [ts:tokensmith.tenant-rotation#1]", t0, 1);
        assert!(Lease::of(&EnvName::new("prod"), TokenKind::ApiToken, &rotation).is_none());
        assert!(lease_nonce().parse::<u32>().unwrap() >= 1_000_000_000);
    }

    #[test]
    fn the_oldest_lease_wins_ties_go_by_id_and_an_active_one_always_wins() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let env = EnvName::new("prod");
        let lease = |id: &str, active: bool, at: OffsetDateTime| {
            let name = lease_name(active, &info("ci@elsewhere", 7, "1111111111"));
            Lease::of(&env, TokenKind::ApiToken, &token(id, &name, at, 1)).unwrap()
        };
        let judge = |leases: &[Lease], mine: &str| {
            matches!(
                judge("environment `prod`", leases, &TokenId::new(mine)).unwrap(),
                Verdict::Ours
            )
        };
        let older = lease("dt0c01.B", false, t0);
        let mine = lease("dt0c01.A", false, t0 + time::Duration::seconds(1));
        assert!(!judge(&[older.clone(), mine.clone()], "dt0c01.A"));
        assert!(judge(&[older.clone(), mine.clone()], "dt0c01.B"));
        // Same instant: the smaller id comes first, for every reader alike.
        let twin = lease("dt0c01.C", false, t0);
        assert!(judge(&[older.clone(), twin.clone()], "dt0c01.B"));
        assert!(!judge(&[older.clone(), twin], "dt0c01.C"));
        // An active lease wins over an older pending one.
        let active = lease("dt0c01.Z", true, t0 + time::Duration::seconds(5));
        assert!(!judge(&[older, active], "dt0c01.B"));
    }
}
