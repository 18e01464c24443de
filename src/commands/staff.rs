//! `kefu staff`: the staff console's accounts — add, list and remove them, set passwords, link
//! them to the Telegram and Discord users they are, and issue personal API tokens. Works on the
//! configured database without loading the KB.
//!
//! A password comes from `KEFU_STAFF_PASSWORD` when it is set, otherwise from one line of stdin;
//! it is never printed or logged. An API token is printed once, on stdout, and kept only as a
//! hash.

use chrono::Utc;
use kefu_core::text::visible;
use kefu_service::{AccountError, Service, ServiceError, StaffAccount, StaffRole};
use serde_json::json;

use super::{Failure, emit, note, open_desk, outln, runtime};
use crate::settings::Settings;

/// The variable a password is read from before stdin is.
pub const PASSWORD_VAR: &str = "KEFU_STAFF_PASSWORD";

/// One `kefu staff` command.
#[derive(Debug)]
pub enum StaffCommand {
    Add { name: String, role: StaffRole },
    Passwd { name: String },
    List { json: bool },
    Remove { name: String },
    Link { name: String, target: LinkTarget },
    Token { name: String },
}

/// What `kefu staff link` does.
#[derive(Debug)]
pub enum LinkTarget {
    /// Link the account to this user of the platform.
    Link { platform: String, user_id: String },
    /// Remove the account's link on the platform.
    Unlink { platform: String },
}

pub fn run(settings: &Settings, command: StaffCommand) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let service = open_desk(settings).await?;
        let result = execute(&service, command).await;
        service.store().close().await;
        emit(&result?)
    })
}

async fn execute(service: &Service, command: StaffCommand) -> Result<String, Failure> {
    let mut out = String::new();
    match command {
        StaffCommand::Add { name, role } => {
            let password = read_password()?;
            let account = service
                .add_staff(&name, role, &password, Utc::now())
                .await
                .map_err(|e| failure(e, &name))?;
            outln!(
                out,
                "added {} ({}); they sign in to the console with this name and password",
                visible(&account.name),
                account.role
            );
        }
        StaffCommand::Passwd { name } => {
            let password = read_password()?;
            if !service
                .set_staff_password(&name, &password)
                .await
                .map_err(|e| failure(e, &name))?
            {
                return Err(no_account(&name));
            }
            outln!(
                out,
                "changed the password of {}; their console sessions have ended",
                visible(&name)
            );
        }
        StaffCommand::List { json } => {
            let accounts = service.staff_accounts().await.map_err(|e| failure(e, ""))?;
            if json {
                let rows: Vec<_> = accounts.iter().map(account_json).collect();
                outln!(out, "{}", json!(rows));
            } else if accounts.is_empty() {
                outln!(
                    out,
                    "no staff accounts; add one with `kefu staff add NAME --role lead`"
                );
            } else {
                outln!(
                    out,
                    "{:<24}  {:<5}  {:<14}  {:<20}  created",
                    "name",
                    "role",
                    "telegram",
                    "discord"
                );
                for a in &accounts {
                    outln!(
                        out,
                        "{:<24}  {:<5}  {:<14}  {:<20}  {}",
                        visible(&a.name),
                        a.role,
                        a.telegram_id.as_deref().unwrap_or("-"),
                        a.discord_id.as_deref().unwrap_or("-"),
                        a.created_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        StaffCommand::Remove { name } => {
            if !service
                .remove_staff(&name)
                .await
                .map_err(|e| failure(e, &name))?
            {
                return Err(no_account(&name));
            }
            outln!(
                out,
                "removed {}; their console sessions and API token no longer work",
                visible(&name)
            );
        }
        StaffCommand::Link { name, target } => {
            let (platform, user_id) = match &target {
                LinkTarget::Link { platform, user_id } => (platform.as_str(), Some(user_id)),
                LinkTarget::Unlink { platform } => (platform.as_str(), None),
            };
            let linked = match service
                .link_staff(&name, platform, user_id.map(String::as_str))
                .await
            {
                Ok(linked) => linked,
                Err(ServiceError::Account(AccountError::PlatformIdTaken { platform, id })) => {
                    let holder = service
                        .staff_by_platform_id(&platform, &id)
                        .await
                        .ok()
                        .flatten()
                        .map_or_else(|| "OTHER".to_owned(), |a| visible(&a.name).into_owned());
                    return Err(Failure::BadInput(anyhow::anyhow!(
                        "the {platform} user {id} is linked to {holder} already; fix: unlink it first with `kefu staff link {holder} --unlink {platform}`"
                    )));
                }
                Err(e) => return Err(failure(e, &name)),
            };
            if !linked {
                return Err(no_account(&name));
            }
            match user_id {
                Some(id) => outln!(
                    out,
                    "{} is linked to {platform} user {id}: what that user does in the staff space is recorded as {}",
                    visible(&name),
                    visible(&name)
                ),
                None => outln!(
                    out,
                    "{} is no longer linked to a {platform} user",
                    visible(&name)
                ),
            }
        }
        StaffCommand::Token { name } => {
            let Some(token) = service
                .issue_api_token(&name, Utc::now())
                .await
                .map_err(|e| failure(e, &name))?
            else {
                return Err(no_account(&name));
            };
            note(&format!(
                "a new API token for {} (shown once; it replaces their earlier one): send it as `Authorization: Bearer TOKEN`",
                visible(&name)
            ));
            outln!(out, "{token}");
        }
    }
    Ok(out)
}

/// The password from `KEFU_STAFF_PASSWORD`, or else one line of stdin (its line ending removed).
fn read_password() -> Result<String, Failure> {
    if let Some(value) = std::env::var_os(PASSWORD_VAR) {
        return value.into_string().map_err(|_| {
            Failure::BadInput(anyhow::anyhow!(
                "{PASSWORD_VAR} is not valid UTF-8; fix: set it to the password as text"
            ))
        });
    }
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (at least 8 characters): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line).map_err(|e| {
        Failure::BadInput(anyhow::anyhow!(
            "cannot read the password from stdin ({e}); fix: pipe it in as one line, or set {PASSWORD_VAR}"
        ))
    })?;
    if read == 0 {
        return Err(Failure::BadInput(anyhow::anyhow!(
            "no password given; fix: pipe it in as one line on stdin, or set {PASSWORD_VAR}"
        )));
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    Ok(password.to_owned())
}

fn account_json(a: &StaffAccount) -> serde_json::Value {
    json!({
        "name": a.name,
        "role": a.role.as_str(),
        "telegram_id": a.telegram_id,
        "discord_id": a.discord_id,
        "created_at": a.created_at.to_rfc3339(),
    })
}

fn no_account(name: &str) -> Failure {
    Failure::BadInput(anyhow::anyhow!(
        "no staff account named {:?}; fix: check the name with `kefu staff list`",
        visible(name)
    ))
}

/// A refused request is bad input, with what to do about it; anything else is a failure.
fn failure(e: ServiceError, name: &str) -> Failure {
    let name = visible(name);
    let ServiceError::Account(refused) = &e else {
        return Failure::Other(e.into());
    };
    let fix = match refused {
        AccountError::NameTaken { .. } => format!(
            "choose another name, or change this account's password with `kefu staff passwd {name}`"
        ),
        AccountError::InvalidName { .. } => {
            "use 1 to 64 characters without control characters or surrounding spaces".to_owned()
        }
        AccountError::PasswordTooShort { .. } => format!(
            "choose a longer password (pipe it in on stdin, or set {PASSWORD_VAR})"
        ),
        AccountError::UnknownPlatform { .. } => "use --telegram or --discord".to_owned(),
        AccountError::InvalidPlatformId { .. } => {
            "give the person's numeric user id (Telegram: from @userinfobot; Discord: Copy User ID in developer mode)".to_owned()
        }
        AccountError::PlatformIdTaken { platform, .. } => format!(
            "unlink it from the other account first (`kefu staff list` shows which; `kefu staff link OTHER --unlink {platform}`)"
        ),
        AccountError::Hashing(_) => return Failure::Other(e.into()),
    };
    Failure::BadInput(anyhow::anyhow!("{refused}; fix: {fix}"))
}
