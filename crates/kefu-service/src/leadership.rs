//! Leadership of platform connections across instances. A connection that must run in exactly
//! one process — the Telegram long poller of a token, a Discord gateway shard — is run by whoever
//! holds its named lease in the database ([`Service::lead`]). The holder renews the lease every
//! third of its term; the others stand by and try to take it every second, so when the holder dies
//! (`kill -9`) another runs the connection within one term plus a second. A holder that cannot
//! renew (the database is unreachable) stops the connection before its term ends, so two
//! processes never run it at once — given clocks that agree to well under a term (NTP).
//!
//! A clean stop gives the lease up, so a standby takes over at its next try.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use tokio::sync::watch;

use crate::{Service, error_chain};

/// How often a standby tries to take a free lease.
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// This process's role for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This process runs the connection.
    Leading,
    /// Another process runs it (or nobody does yet); this one takes over when its lease expires.
    StandingBy,
}

/// The connections this process leads or stands by for, by lease name.
#[derive(Debug, Default)]
pub(crate) struct Roles(Mutex<BTreeMap<String, Role>>);

impl Roles {
    fn set(&self, name: &str, role: Option<Role>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match role {
            Some(role) => {
                map.insert(name.to_owned(), role);
            }
            None => {
                map.remove(name);
            }
        }
    }

    pub(crate) fn all(&self) -> Vec<(String, Role)> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl Service {
    /// Runs `work` while this process holds the lease `name`, until `shutdown`: stands by until
    /// the lease is free, runs `work` with a receiver that turns `true` when it must stop (the
    /// lease was lost, or shutdown), gives the lease up when `work` returns, and stands by again
    /// unless shutting down. `work` must return promptly once its receiver turns `true`.
    pub async fn lead<F, Fut>(&self, name: &str, mut shutdown: watch::Receiver<bool>, mut work: F)
    where
        F: FnMut(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let term = self.config.lease_term;
        let owner = self.instance().to_owned();
        loop {
            self.roles.set(name, Some(Role::StandingBy));
            let mut announced = false;
            // Stand by.
            let mut valid_until = loop {
                if stopping(&shutdown) {
                    self.roles.set(name, None);
                    return;
                }
                let asked = Instant::now();
                let now = Utc::now();
                match self
                    .store
                    .acquire_lease(name, &owner, now + delta(term), now)
                    .await
                {
                    Ok(true) => break asked + term,
                    Ok(false) => {
                        if !announced {
                            let holder = self.store.lease_holder(name).await.ok().flatten();
                            tracing::info!(
                                lease = name,
                                holder = holder.as_ref().map(|(h, _)| h.as_str()).unwrap_or("?"),
                                "standing by: another instance holds this connection"
                            );
                            announced = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(lease = name, error = %error_chain(&e), "cannot take a lease")
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(STANDBY_RETRY) => {}
                    _ = shutdown.changed() => {}
                }
            };
            tracing::info!(lease = name, instance = %owner, "leading: this instance runs the connection");
            self.roles.set(name, Some(Role::Leading));
            let (stop, stopped) = watch::channel(false);
            let mut watching = shutdown.clone();
            let renew = async {
                // Renews every third of the term; stops the work when the lease is lost, when a
                // renewal cannot reach the database before the term ends, or at shutdown.
                let lost = loop {
                    let next = Instant::now() + term / 3;
                    tokio::select! {
                        () = tokio::time::sleep_until(next.into()) => {}
                        _ = watching.changed() => {}
                    }
                    if stopping(&watching) {
                        break false;
                    }
                    // Give up a little before the term ends: the others may take it then.
                    let margin = term / 6;
                    let deadline = valid_until.checked_sub(margin).unwrap_or(valid_until);
                    let asked = Instant::now();
                    let now = Utc::now();
                    let renewal = tokio::time::timeout_at(
                        deadline.into(),
                        self.store
                            .acquire_lease(name, &owner, now + delta(term), now),
                    )
                    .await;
                    match renewal {
                        Ok(Ok(true)) => valid_until = asked + term,
                        Ok(Ok(false)) => {
                            tracing::warn!(
                                lease = name,
                                "lost the lease to another instance; stopping the connection"
                            );
                            break true;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(lease = name, error = %error_chain(&e), "cannot renew a lease");
                            if Instant::now() >= deadline {
                                break true;
                            }
                        }
                        Err(_) => {
                            tracing::warn!(
                                lease = name,
                                "cannot renew a lease in time; stopping the connection"
                            );
                            break true;
                        }
                    }
                };
                let _ = stop.send(true);
                lost
            };
            let mut renew = std::pin::pin!(renew);
            let mut work = std::pin::pin!(work(stopped));
            let (lost, ended_alone) = tokio::select! {
                lost = &mut renew => {
                    work.await;
                    (lost, false)
                }
                () = &mut work => (false, true),
            };
            self.roles.set(name, Some(Role::StandingBy));
            if !lost {
                match self.store.release_lease(name, &owner).await {
                    Ok(_) => tracing::info!(lease = name, "gave the lease up"),
                    Err(e) => {
                        tracing::warn!(lease = name, error = %error_chain(&e), "cannot give a lease up; it expires on its own")
                    }
                }
            }
            if stopping(&shutdown) {
                self.roles.set(name, None);
                return;
            }
            if ended_alone {
                // The connection stopped by itself (it logged why): not at once again.
                tokio::select! {
                    () = tokio::time::sleep(STANDBY_RETRY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// The connections this process leads or stands by for, by lease name.
    pub fn roles(&self) -> Vec<(String, Role)> {
        self.roles.all()
    }
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::seconds(3))
}
