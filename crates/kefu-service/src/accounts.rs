//! Staff accounts for the console: creating and removing them, passwords (argon2id), linking an
//! account to the Telegram and Discord users it is, signing in with throttling, sessions and
//! personal API tokens.
//!
//! Session and API tokens are 32 random bytes in hex; the database keeps only their SHA-256, so
//! reading it does not let anyone sign in. A session lasts [`SESSION_HOURS`] hours.

use std::str::FromStr;
use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kefu_store::{StaffRecord, StoreError};
use sha2::{Digest, Sha256};

use crate::{Result, Service, ServiceError};

/// How long a console session lasts.
pub const SESSION_HOURS: i64 = 12;

/// Failed sign-ins that throttle an account name or an address…
pub const MAX_LOGIN_FAILURES: usize = 5;

/// …within this many minutes.
pub const LOGIN_WINDOW_MINUTES: i64 = 15;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The longest account name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The platforms a staff account links to.
pub const STAFF_PLATFORMS: [&str; 2] = ["telegram", "discord"];

/// What a staff member may do in the console: agents work tickets; leads also see reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    /// Works tickets.
    Agent,
    /// Works tickets and sees the reports.
    Lead,
}

impl StaffRole {
    /// `agent` or `lead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Lead => "lead",
        }
    }

    /// True for a lead.
    pub fn is_lead(self) -> bool {
        self == Self::Lead
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A role name that is neither `agent` nor `lead`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown staff role {0:?}: the roles are agent and lead")]
pub struct UnknownRole(pub String);

impl FromStr for StaffRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Self::Agent),
            "lead" => Ok(Self::Lead),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// A staff account (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccount {
    /// Unique; 1 to 64 characters, no control characters, no whitespace at either end.
    pub name: String,
    /// What the account may do.
    pub role: StaffRole,
    /// The Telegram user id of that person (decimal).
    pub telegram_id: Option<String>,
    /// The Discord user id of that person (a snowflake, decimal).
    pub discord_id: Option<String>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<StaffRecord> for StaffAccount {
    type Error = ServiceError;

    fn try_from(r: StaffRecord) -> Result<Self> {
        let role = StaffRole::from_str(&r.role).map_err(|_| {
            ServiceError::Store(StoreError::Corrupt {
                what: format!("staff account {:?} has role {:?}", r.name, r.role),
            })
        })?;
        Ok(StaffAccount {
            name: r.name,
            role,
            telegram_id: r.telegram_id,
            discord_id: r.discord_id,
            created_at: r.created_at,
        })
    }
}

/// A signed-in console session.
#[derive(Debug, Clone)]
pub struct StaffSession {
    /// The opaque cookie value; the database keeps only its SHA-256.
    pub token: String,
    /// Who is signed in.
    pub staff: StaffAccount,
    /// The session's CSRF token (32 random bytes, hex).
    pub csrf: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// What a sign-in attempt came to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    LoggedIn(StaffSession),
    /// Unknown name or wrong password (indistinguishable to the caller).
    Refused,
    /// Too many recent failures for this account or this address.
    Throttled {
        /// How long until an attempt is considered again.
        retry_after: TimeDelta,
    },
}

/// Why a staff account could not be created or changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The name is in use.
    #[error("a staff account named {name:?} exists already")]
    NameTaken {
        /// The name.
        name: String,
    },
    /// The name cannot be used.
    #[error("the staff name {name:?} cannot be used: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// The password is too short.
    #[error("the password is too short: it needs at least {min} characters")]
    PasswordTooShort {
        /// The minimum.
        min: usize,
    },
    /// Staff accounts link to Telegram and Discord users only.
    #[error("staff accounts link to telegram or discord users, not {platform:?}")]
    UnknownPlatform {
        /// The platform named.
        platform: String,
    },
    /// A platform user id is a decimal number.
    #[error("{id:?} is not a {platform} user id: it is a decimal number")]
    InvalidPlatformId {
        /// The platform.
        platform: String,
        /// What was given.
        id: String,
    },
    /// Another account is linked to this platform user.
    #[error("the {platform} user {id} is linked to another staff account already")]
    PlatformIdTaken {
        /// The platform.
        platform: String,
        /// The user id.
        id: String,
    },
    /// Hashing or verifying a password failed.
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// 32 random bytes from the operating system, in hex.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ServiceError::Random)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What the database keeps of a token: its SHA-256, in hex.
fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// An argon2id PHC string of `password` with a random salt. Slow on purpose: run it off the
/// async workers.
fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(ServiceError::Random)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ServiceError::Account(AccountError::Hashing(e.to_string())))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Account(AccountError::Hashing(e.to_string())))
}

/// Whether `password` matches the PHC string `hash` (a hash that cannot be read matches nothing).
fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash that no account has, verified against when the name is unknown so that an unknown
/// name takes as long to refuse as a wrong password.
fn decoy_hash() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY
        .get_or_init(|| hash_password("kefu decoy password").ok())
        .as_deref()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Account(AccountError::Hashing(e.to_string())))
}

async fn hash_blocking(password: &str) -> Result<String> {
    let password = password.to_owned();
    blocking(move || hash_password(&password)).await?
}

fn check_name(name: &str) -> std::result::Result<(), AccountError> {
    let chars = name.chars().count();
    let reason = if chars == 0 {
        Some("it is empty")
    } else if chars > MAX_NAME_CHARS {
        Some("it is longer than 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.trim() != name {
        Some("it begins or ends with whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(AccountError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_password(password: &str) -> std::result::Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(AccountError::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
        })
    } else {
        Ok(())
    }
}

fn check_platform(platform: &str) -> std::result::Result<(), AccountError> {
    if STAFF_PLATFORMS.contains(&platform) {
        Ok(())
    } else {
        Err(AccountError::UnknownPlatform {
            platform: platform.to_owned(),
        })
    }
}

fn account(record: Option<StaffRecord>) -> Result<Option<StaffAccount>> {
    record.map(StaffAccount::try_from).transpose()
}

impl Service {
    /// Creates a staff account. Refused when the name is taken or unusable, or the password is
    /// shorter than 8 characters.
    pub async fn add_staff(
        &self,
        name: &str,
        role: StaffRole,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<StaffAccount> {
        check_name(name)?;
        check_password(password)?;
        if self.store.staff_member(name).await?.is_some() {
            return Err(AccountError::NameTaken {
                name: name.to_owned(),
            }
            .into());
        }
        let hash = hash_blocking(password).await?;
        if !self
            .store
            .add_staff(name, role.as_str(), &hash, now)
            .await?
        {
            return Err(AccountError::NameTaken {
                name: name.to_owned(),
            }
            .into());
        }
        self.staff_account(name).await?.ok_or_else(|| {
            ServiceError::Store(StoreError::Corrupt {
                what: format!("staff account {name:?} vanished right after it was created"),
            })
        })
    }

    /// Sets an account's password and ends its console sessions; `false`: no such account.
    pub async fn set_staff_password(&self, name: &str, password: &str) -> Result<bool> {
        check_password(password)?;
        if self.store.staff_member(name).await?.is_none() {
            return Ok(false);
        }
        let hash = hash_blocking(password).await?;
        Ok(self.store.set_staff_password(name, &hash).await?)
    }

    /// Every staff account, by name.
    pub async fn staff_accounts(&self) -> Result<Vec<StaffAccount>> {
        self.store
            .staff_members()
            .await?
            .into_iter()
            .map(StaffAccount::try_from)
            .collect()
    }

    /// A staff account by name.
    pub async fn staff_account(&self, name: &str) -> Result<Option<StaffAccount>> {
        account(self.store.staff_member(name).await?)
    }

    /// Deletes an account with its sessions and API tokens; `false`: no such account.
    pub async fn remove_staff(&self, name: &str) -> Result<bool> {
        Ok(self.store.remove_staff(name).await?)
    }

    /// Links an account to the `telegram` or `discord` user `platform_user_id` (a decimal id),
    /// or unlinks it from that platform (`None`); `false`: no such account. A user linked to
    /// another account is refused.
    pub async fn link_staff(
        &self,
        name: &str,
        platform: &str,
        platform_user_id: Option<&str>,
    ) -> Result<bool> {
        check_platform(platform)?;
        if let Some(id) = platform_user_id
            && (id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(AccountError::InvalidPlatformId {
                platform: platform.to_owned(),
                id: id.to_owned(),
            }
            .into());
        }
        match self
            .store
            .link_staff(name, platform, platform_user_id)
            .await
        {
            Ok(linked) => Ok(linked),
            Err(StoreError::StaffIdTaken { platform, id }) => {
                Err(AccountError::PlatformIdTaken { platform, id }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account linked to a platform user, if any.
    pub async fn staff_by_platform_id(
        &self,
        platform: &str,
        platform_user_id: &str,
    ) -> Result<Option<StaffAccount>> {
        account(
            self.store
                .staff_by_platform_id(platform, platform_user_id)
                .await?,
        )
    }

    /// Signs in: the password is verified with argon2 unless the account name or the address
    /// `ip` failed 5 times in the last 15 minutes (each counted on its own), in which case the
    /// attempt is refused unverified. A failure counts against both; a success clears the
    /// account's failures and starts a 12-hour session.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        ip: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome> {
        let window = TimeDelta::minutes(LOGIN_WINDOW_MINUTES);
        let account_key = format!("account:{name}");
        let ip_key = format!("ip:{ip}");
        let mut retry_after: Option<TimeDelta> = None;
        for key in [&account_key, &ip_key] {
            let recent = self
                .store
                .recent_login_failures(key, now - window, MAX_LOGIN_FAILURES as i64)
                .await?;
            if recent.len() >= MAX_LOGIN_FAILURES
                && let Some(oldest) = recent.last()
            {
                // Attempts are considered again once the oldest of these failures leaves the
                // window.
                let wait = (*oldest + window - now).max(TimeDelta::seconds(1));
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        if let Some(retry_after) = retry_after {
            tracing::info!(ip, "sign-in throttled");
            return Ok(LoginOutcome::Throttled { retry_after });
        }
        let credentials = self.store.staff_credentials(name).await?;
        let password_owned = password.to_owned();
        let hash = credentials.as_ref().map(|(_, hash)| hash.clone());
        let verified = blocking(move || match hash {
            Some(hash) => verify_password(&password_owned, &hash),
            None => {
                if let Some(decoy) = decoy_hash() {
                    let _ = verify_password(&password_owned, decoy);
                }
                false
            }
        })
        .await?;
        let record = match credentials {
            Some((record, _)) if verified => record,
            _ => {
                self.store
                    .record_login_failure(&[&account_key, &ip_key], now, now - window)
                    .await?;
                tracing::info!(ip, "sign-in refused");
                return Ok(LoginOutcome::Refused);
            }
        };
        self.store.clear_login_failures(&account_key).await?;
        let token = random_token()?;
        let csrf = random_token()?;
        let expires_at = (now + TimeDelta::hours(SESSION_HOURS)).trunc_subsecs(6);
        if !self
            .store
            .create_staff_session(&token_hash(&token), name, &csrf, now, expires_at)
            .await?
        {
            // The account was removed while the password was being verified.
            return Ok(LoginOutcome::Refused);
        }
        Ok(LoginOutcome::LoggedIn(StaffSession {
            token,
            staff: StaffAccount::try_from(record)?,
            csrf,
            expires_at,
        }))
    }

    /// The session a cookie's token opens: `None` when unknown or expired by `now`.
    pub async fn staff_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffSession>> {
        let Some(found) = self.store.staff_session(&token_hash(token), now).await? else {
            return Ok(None);
        };
        Ok(Some(StaffSession {
            token: token.to_owned(),
            staff: StaffAccount::try_from(found.staff)?,
            csrf: found.csrf,
            expires_at: found.expires_at,
        }))
    }

    /// Ends the session of this token (nothing when there is none).
    pub async fn logout(&self, token: &str) -> Result<()> {
        Ok(self.store.delete_staff_session(&token_hash(token)).await?)
    }

    /// A new personal API token for the account, which replaces its earlier ones: returned
    /// once, kept only as a hash. `None`: no such account.
    pub async fn issue_api_token(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let token = random_token()?;
        let stored = self
            .store
            .replace_staff_token(name, &token_hash(&token), now)
            .await?;
        Ok(stored.then_some(token))
    }

    /// The account an API token belongs to.
    pub async fn staff_by_api_token(&self, token: &str) -> Result<Option<StaffAccount>> {
        account(self.store.staff_by_token(&token_hash(token)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_print_their_names() {
        for role in [StaffRole::Agent, StaffRole::Lead] {
            assert_eq!(role.as_str().parse::<StaffRole>(), Ok(role));
        }
        assert!(StaffRole::Lead.is_lead());
        assert!(!StaffRole::Agent.is_lead());
        let e = "admin".parse::<StaffRole>().unwrap_err().to_string();
        assert!(e.contains("agent") && e.contains("lead"), "{e}");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("王小明").is_ok());
        assert!(check_name(&"x".repeat(64)).is_ok());
        for bad in ["", " alice", "alice ", "al\u{7}ice", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_hash_is_the_sha256_hex_of_the_token() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = random_token().unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, random_token().unwrap());
    }

    #[test]
    fn a_password_hash_is_argon2id_and_verifies_only_its_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }
}
