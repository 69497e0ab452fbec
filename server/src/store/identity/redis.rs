//! `RedisIdentity`: the identity store in Redis, on the booking store's connection.
//!
//! Key layout under the prefix `P` (ids packed as integers, so no key holds an id number
//! in clear):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:id:person:ID` | string | the insured person (json) |
//! | `P:id:card:CARD` | string | the packed id of the card's person (CARD: all 12 digits) |
//! | `P:id:persons` | string | how many persons |
//! | `P:id:reg:ID` | string | the person's registration (json, live or cancelled) |
//! | `P:id:hist:ID` | list | the person's registration events (json) |
//! | `P:id:serial` | string | the last serial issued |
//! | `P:id:ledger` | stream | every registration event, for the audit |
//! | `P:id:once:KEY` | string | a used captcha or OTP code, until it expires |
//! | `P:id:fail:SUBJECT` | hash | login failures (`count`, `last`), expiring |
//! | `P:id:partner:ID`, `P:id:pkey:HASH` | string | kiosk partners and their key hashes |
//!
//! Each registration write is one Lua script, so a person's decision, serial, history and
//! ledger entry are written together or not at all.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;
use time::OffsetDateTime;

use super::{BoxFuture, IdentityStore, RegistrationAudit, Upsert, audit_histories};
use crate::domain::{IdNumber, rfc3339};
use crate::identity::login::{Failures, Gate, LoginPolicy};
use crate::identity::partner::Partner;
use crate::identity::{
    InsuredPerson, NhiCard, RegisterOutcome, Registration, RegistrationEvent, RegistrationForm,
};
use crate::store::StoreError;
use crate::store::redis_bounded as bounded;

/// Persons per script call of an import: big enough to amortise the round trip, small
/// enough that one call blocks Redis for a few milliseconds only.
const PERSONS_PER_CALL: usize = 2_000;
/// Import calls in flight at once on the shared pipelined connection.
const IMPORT_CONCURRENCY: usize = 4;
/// Ledger entries per audit page.
const LEDGER_PAGE: usize = 10_000;
/// Bulk calls (imports, audit pages) get at least this long.
const BULK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Scripts {
    registration: Script,
    persons: Script,
    partner: Script,
    failure: Script,
    attempt: Script,
}

/// The Redis identity store.
#[derive(Debug)]
pub struct RedisIdentity {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
}

fn parse_error(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("unexpected Redis data in {what}: {e}"))
}

fn boxed<'a, T: Send + 'a>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> BoxFuture<'a, T> {
    Box::pin(f)
}

impl RedisIdentity {
    /// The identity store on a connection shared with the booking store.
    pub fn new(conn: ConnectionManager, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
            timeout,
            scripts: Scripts {
                registration: Script::new(include_str!("registration.lua")),
                persons: Script::new(include_str!("persons.lua")),
                partner: Script::new(include_str!("partner.lua")),
                failure: Script::new(include_str!("failure.lua")),
                attempt: Script::new(include_str!("attempt.lua")),
            },
        }
    }

    fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}:id:{kind}:{id}", self.prefix)
    }

    fn global(&self, name: &str) -> String {
        format!("{}:id:{name}", self.prefix)
    }

    fn bulk_timeout(&self) -> Duration {
        self.timeout.max(BULK_TIMEOUT)
    }

    async fn write(
        &self,
        op: &'static str,
        person: IdNumber,
        form: Option<&RegistrationForm>,
        now: OffsetDateTime,
    ) -> Result<(bool, Option<Registration>), StoreError> {
        let form = match form {
            Some(f) => serde_json::to_string(f)
                .map_err(|e| StoreError::Internal(format!("registration form: {e}")))?,
            None => String::new(),
        };
        let packed = person.packed();
        let mut conn = self.conn.clone();
        let (changed, json): (i64, String) = bounded(
            "registration",
            self.timeout,
            self.scripts
                .registration
                .key(self.key("reg", packed))
                .key(self.key("hist", packed))
                .key(self.global("serial"))
                .key(self.global("ledger"))
                .arg(op)
                .arg(person.to_string())
                .arg(rfc3339(now))
                .arg(form)
                .invoke_async(&mut conn),
        )
        .await?;
        let registration = if json.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&json).map_err(|e| parse_error("a registration", e))?)
        };
        Ok((changed == 1, registration))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = bounded(
            what,
            self.timeout,
            ::redis::cmd("GET").arg(key).query_async(&mut conn),
        )
        .await?;
        raw.map(|r| serde_json::from_str(&r).map_err(|e| parse_error(what, e)))
            .transpose()
    }
}

impl IdentityStore for RedisIdentity {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn upsert_persons(
        &self,
        persons: Vec<InsuredPerson>,
    ) -> BoxFuture<'_, Result<Upsert, StoreError>> {
        boxed(async move {
            let mut calls = Vec::new();
            for chunk in persons.chunks(PERSONS_PER_CALL) {
                let mut invocation = self.scripts.persons.key(self.global("persons"));
                invocation.arg(&self.prefix);
                for p in chunk {
                    let json = serde_json::to_string(p)
                        .map_err(|e| StoreError::Internal(format!("person: {e}")))?;
                    invocation
                        .arg(p.id_number.packed())
                        .arg(p.nhi_card.to_string())
                        .arg(json);
                }
                calls.push(invocation);
            }
            // A few calls in flight keep the pipeline full without one import holding
            // the shared connection's queue for long.
            for (g, group) in calls.chunks(IMPORT_CONCURRENCY).enumerate() {
                let results = futures_util::future::join_all(group.iter().map(|inv| {
                    let mut conn = self.conn.clone();
                    async move {
                        bounded::<(i64, i64)>(
                            "registry",
                            self.bulk_timeout(),
                            inv.invoke_async(&mut conn),
                        )
                        .await
                    }
                }))
                .await;
                for (c, r) in results.into_iter().enumerate() {
                    let (_, taken) = r?;
                    if taken >= 0 {
                        let call = g * IMPORT_CONCURRENCY + c;
                        return Ok(Upsert::CardTaken {
                            index: call * PERSONS_PER_CALL + taken as usize,
                        });
                    }
                }
            }
            Ok(Upsert::Written(persons.len() as u64))
        })
    }

    fn person_count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let n: Option<u64> = bounded(
                "registry",
                self.timeout,
                ::redis::cmd("GET")
                    .arg(self.global("persons"))
                    .query_async(&mut conn),
            )
            .await?;
            Ok(n.unwrap_or(0))
        })
    }

    fn person_by_id(
        &self,
        id: IdNumber,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>> {
        boxed(async move {
            self.get_json("registry", self.key("person", id.packed()))
                .await
        })
    }

    fn person_by_card(
        &self,
        card: NhiCard,
    ) -> BoxFuture<'_, Result<Option<InsuredPerson>, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let id: Option<u64> = bounded(
                "registry",
                self.timeout,
                ::redis::cmd("GET")
                    .arg(self.key("card", card))
                    .query_async(&mut conn),
            )
            .await?;
            match id {
                None => Ok(None),
                Some(id) => self.get_json("registry", self.key("person", id)).await,
            }
        })
    }

    fn register(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<RegisterOutcome, StoreError>> {
        boxed(async move {
            let (changed, r) = self.write("register", person, Some(&form), now).await?;
            let r = r.ok_or_else(|| StoreError::Internal("register answered nothing".into()))?;
            Ok(if changed {
                RegisterOutcome::Registered(r)
            } else {
                RegisterOutcome::AlreadyRegistered(r)
            })
        })
    }

    fn modify(
        &self,
        person: IdNumber,
        form: RegistrationForm,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move { Ok(self.write("modify", person, Some(&form), now).await?.1) })
    }

    fn cancel(
        &self,
        person: IdNumber,
        now: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move { Ok(self.write("cancel", person, None, now).await?.1) })
    }

    /// Walks the registrations with `SCAN`, a page at a time, reading each page's
    /// registrations and then their persons with `MGET`.
    fn registrants(&self) -> BoxFuture<'_, Result<Vec<crate::settlement::Registrant>, StoreError>> {
        boxed(async move {
            let mut out = Vec::new();
            // SCAN may return a key twice (the table resized during the walk).
            let mut seen = std::collections::HashSet::new();
            let pattern = format!("{}:id:reg:*", self.prefix);
            let mut cursor: u64 = 0;
            loop {
                let mut conn = self.conn.clone();
                let (next, keys): (u64, Vec<String>) = bounded(
                    "registrants",
                    self.bulk_timeout(),
                    ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(10_000)
                        .query_async(&mut conn),
                )
                .await?;
                if !keys.is_empty() {
                    let raw: Vec<Option<String>> = bounded(
                        "registrants",
                        self.bulk_timeout(),
                        ::redis::cmd("MGET").arg(&keys).query_async(&mut conn),
                    )
                    .await?;
                    let mut live = Vec::new();
                    for r in raw.into_iter().flatten() {
                        let r: Registration = serde_json::from_str(&r)
                            .map_err(|e| parse_error("a registration", e))?;
                        if r.is_live() && seen.insert(r.person.packed()) {
                            live.push(r);
                        }
                    }
                    if !live.is_empty() {
                        let keys: Vec<String> = live
                            .iter()
                            .map(|r| self.key("person", r.person.packed()))
                            .collect();
                        let persons: Vec<Option<String>> = bounded(
                            "registrants",
                            self.bulk_timeout(),
                            ::redis::cmd("MGET").arg(keys).query_async(&mut conn),
                        )
                        .await?;
                        for (r, p) in live.iter().zip(persons) {
                            let Some(p) = p else { continue };
                            let p: InsuredPerson =
                                serde_json::from_str(&p).map_err(|e| parse_error("a person", e))?;
                            out.extend(crate::settlement::Registrant::new(&p, r));
                        }
                    }
                }
                if next == 0 {
                    return Ok(out);
                }
                cursor = next;
            }
        })
    }

    fn registration(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Option<Registration>, StoreError>> {
        boxed(async move {
            let r: Option<Registration> = self
                .get_json("registration", self.key("reg", person.packed()))
                .await?;
            Ok(r.filter(Registration::is_live))
        })
    }

    fn history(
        &self,
        person: IdNumber,
    ) -> BoxFuture<'_, Result<Vec<RegistrationEvent>, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let raw: Vec<String> = bounded(
                "registration",
                self.timeout,
                ::redis::cmd("LRANGE")
                    .arg(self.key("hist", person.packed()))
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn),
            )
            .await?;
            raw.iter()
                .map(|r| serde_json::from_str(r).map_err(|e| parse_error("a history", e)))
                .collect()
        })
    }

    fn use_once(&self, key: String, expires_at: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let set: Option<String> = bounded(
                "once",
                self.timeout,
                ::redis::cmd("SET")
                    .arg(self.key("once", &key))
                    .arg(1)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires_at.max(1))
                    .query_async(&mut conn),
            )
            .await?;
            Ok(set.is_some())
        })
    }

    fn failures(&self, subject: String, _now: i64) -> BoxFuture<'_, Result<Failures, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let (count, last): (Option<u32>, Option<i64>) = bounded(
                "login",
                self.timeout,
                ::redis::cmd("HMGET")
                    .arg(self.key("fail", &subject))
                    .arg("count")
                    .arg("last")
                    .query_async(&mut conn),
            )
            .await?;
            Ok(Failures {
                count: count.unwrap_or(0),
                last_at: last.unwrap_or(0),
            })
        })
    }

    fn record_failure(
        &self,
        subject: String,
        now: i64,
        keep_seconds: i64,
    ) -> BoxFuture<'_, Result<Failures, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let (count, last_at): (u32, i64) = bounded(
                "login",
                self.timeout,
                self.scripts
                    .failure
                    .key(self.key("fail", &subject))
                    .arg(now)
                    .arg(keep_seconds.max(1))
                    .invoke_async(&mut conn),
            )
            .await?;
            Ok(Failures { count, last_at })
        })
    }

    fn attempt(
        &self,
        subject: String,
        now: i64,
        policy: LoginPolicy,
    ) -> BoxFuture<'_, Result<Gate, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let (kind, retry_after): (String, u64) = bounded(
                "login",
                self.timeout,
                self.scripts
                    .attempt
                    .key(self.key("fail", &subject))
                    .arg(now)
                    .arg(policy.keep_seconds())
                    .arg(policy.throttle_after)
                    .arg(policy.throttle_seconds)
                    .arg(policy.lock_after)
                    .arg(policy.lock_seconds)
                    .invoke_async(&mut conn),
            )
            .await?;
            match kind.as_str() {
                "open" => Ok(Gate::Open),
                "throttled" => Ok(Gate::Throttled { retry_after }),
                "locked" => Ok(Gate::Locked { retry_after }),
                other => Err(parse_error("an attempt", other)),
            }
        })
    }

    fn clear_failures(&self, subject: String) -> BoxFuture<'_, Result<(), StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let _: i64 = bounded(
                "login",
                self.timeout,
                ::redis::cmd("DEL")
                    .arg(self.key("fail", &subject))
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn put_partner(&self, partner: Partner) -> BoxFuture<'_, Result<(), StoreError>> {
        boxed(async move {
            let json = serde_json::to_string(&partner)
                .map_err(|e| StoreError::Internal(format!("partner: {e}")))?;
            let mut conn = self.conn.clone();
            let _: i64 = bounded(
                "partner",
                self.timeout,
                self.scripts
                    .partner
                    .key(self.key("partner", &partner.partner))
                    .key(self.key("pkey", &partner.key_hash))
                    .arg(&self.prefix)
                    .arg(&partner.partner)
                    .arg(json)
                    .arg(&partner.key_hash)
                    .invoke_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn partner_by_key(
        &self,
        key_hash: String,
    ) -> BoxFuture<'_, Result<Option<Partner>, StoreError>> {
        boxed(async move {
            if !key_hash.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Ok(None);
            }
            let mut conn = self.conn.clone();
            let id: Option<String> = bounded(
                "partner",
                self.timeout,
                ::redis::cmd("GET")
                    .arg(self.key("pkey", &key_hash))
                    .query_async(&mut conn),
            )
            .await?;
            match id {
                None => Ok(None),
                Some(id) => self.get_json("partner", self.key("partner", id)).await,
            }
        })
    }

    fn audit(&self) -> BoxFuture<'_, Result<RegistrationAudit, StoreError>> {
        boxed(async move {
            let mut conn = self.conn.clone();
            let (last_serial, persons): (Option<u64>, Option<u64>) = bounded(
                "audit",
                self.bulk_timeout(),
                ::redis::cmd("MGET")
                    .arg(self.global("serial"))
                    .arg(self.global("persons"))
                    .query_async(&mut conn),
            )
            .await?;
            // Events by person, in ledger order (the order the scripts ran).
            let mut histories: HashMap<u64, Vec<RegistrationEvent>> = HashMap::new();
            let mut start = "-".to_string();
            loop {
                let page: Vec<(String, Vec<(String, String)>)> = bounded(
                    "audit",
                    self.bulk_timeout(),
                    ::redis::cmd("XRANGE")
                        .arg(self.global("ledger"))
                        .arg(&start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(LEDGER_PAGE)
                        .query_async(&mut conn),
                )
                .await?;
                let Some((last_id, _)) = page.last() else {
                    break;
                };
                start = format!("({last_id}");
                let full = page.len() == LEDGER_PAGE;
                for (_, fields) in page {
                    let e = fields
                        .iter()
                        .find(|(k, _)| k == "e")
                        .ok_or_else(|| parse_error("the ledger", "an entry without an event"))?;
                    let event: RegistrationEvent =
                        serde_json::from_str(&e.1).map_err(|e| parse_error("the ledger", e))?;
                    histories
                        .entry(event.registration().person.packed())
                        .or_default()
                        .push(event);
                }
                if !full {
                    break;
                }
            }
            let people: Vec<u64> = histories.keys().copied().collect();
            let mut current: HashMap<u64, Registration> = HashMap::new();
            for chunk in people.chunks(1_000) {
                let keys: Vec<String> = chunk.iter().map(|p| self.key("reg", p)).collect();
                let raw: Vec<Option<String>> = bounded(
                    "audit",
                    self.bulk_timeout(),
                    ::redis::cmd("MGET").arg(keys).query_async(&mut conn),
                )
                .await?;
                for (p, r) in chunk.iter().zip(raw) {
                    if let Some(r) = r {
                        let r: Registration = serde_json::from_str(&r)
                            .map_err(|e| parse_error("a registration", e))?;
                        current.insert(*p, r);
                    }
                }
            }
            let entries: Vec<(IdNumber, &[RegistrationEvent], Option<&Registration>)> = histories
                .iter()
                .filter_map(|(p, h)| {
                    IdNumber::from_packed(*p).map(|id| (id, h.as_slice(), current.get(p)))
                })
                .collect();
            Ok(audit_histories(
                entries.into_iter(),
                last_serial.unwrap_or(0),
                persons.unwrap_or(0),
            ))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        // The booking store owns the connection and closes it.
        boxed(async {})
    }
}
