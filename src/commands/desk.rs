//! `kefu desk`: the staff desk in the terminal, on the same database as every channel. A reply is
//! delivered to the user on whatever platform they wrote from (through the outbox). The desk
//! trains no KB (it loads one only to check a label's intent) and never handles users' messages:
//! it reads and acts on tickets only. What users wrote is shown with control characters made
//! visible, so nothing in a message can drive the staff member's terminal.

use chrono::Utc;
use kefu_core::model::{Sender, Ticket};
use kefu_core::staff::StaffAction;
use kefu_core::text::visible;
use kefu_service::{Label, Service, StaffActor, StaffOutcome, TicketLabel};
use serde_json::json;

use super::{Failure, emit, load_kb, open_desk, outln, runtime};
use crate::settings::Settings;

/// One desk action.
#[derive(Debug)]
pub enum DeskAction {
    List {
        json: bool,
    },
    Show {
        id: String,
        json: bool,
    },
    Claim {
        id: String,
        staff: String,
    },
    Reply {
        id: String,
        staff: String,
        text: String,
    },
    Resolve {
        id: String,
        staff: String,
        /// What the user's question was about, recorded once the ticket is resolved.
        label: Option<Label>,
    },
    /// Labels (or relabels) a ticket without acting on it.
    Label {
        id: String,
        staff: String,
        label: Label,
    },
    Release {
        id: String,
        staff: String,
    },
}

pub fn run(settings: &Settings, action: DeskAction) -> Result<(), Failure> {
    // A label is checked before anything changes: a mistyped intent leaves the ticket as it was.
    match &action {
        DeskAction::Resolve {
            label: Some(label), ..
        }
        | DeskAction::Label { label, .. } => check_label(settings, label)?,
        _ => {}
    }
    runtime()?.block_on(async {
        let service = open_desk(settings).await?;
        let now = Utc::now();
        let mut out = String::new();
        match action {
            DeskAction::List { json } => {
                let open = service.store().open_tickets(now).await.map_err(store)?;
                if json {
                    let rows: Vec<_> = open
                        .iter()
                        .map(|o| {
                            let mut v = ticket_json(&o.ticket);
                            v["waiting_secs"] = json!(o.waiting.num_seconds());
                            v
                        })
                        .collect();
                    outln!(out, "{}", json!(rows));
                } else if open.is_empty() {
                    outln!(out, "the queue is empty");
                } else {
                    outln!(out, "{:>4}  {:<6}  {:<7}  {:<8}  {:<16}  {:<9}  {:<28}  waiting", "id", "code", "prio", "state", "user", "platform", "intent");
                    for o in &open {
                        let t = &o.ticket;
                        outln!(
                            out,
                            "{:>4}  {:<6}  {:<7}  {:<8}  {:<16}  {:<9}  {:<28}  {}",
                            t.id,
                            t.code,
                            t.priority.as_str(),
                            t.status.as_str(),
                            visible(&t.user_name),
                            t.conversation.platform,
                            t.intent.as_deref().unwrap_or("-"),
                            human_duration(o.waiting.num_seconds())
                        );
                    }
                }
            }
            DeskAction::Show { id, json } => {
                let ticket = find(&service, &id).await?;
                let transcript = service.store().transcript(&ticket.conversation).await.map_err(store)?;
                let ratings = service.store().ratings_for(ticket.id).await.map_err(store)?;
                let label = service.store().ticket_label(ticket.id).await.map_err(store)?;
                let failed = service
                    .store()
                    .failed_deliveries(Some(ticket.id), Some(&ticket.conversation), 50)
                    .await
                    .map_err(store)?;
                if json {
                    let mut v = ticket_json(&ticket);
                    v["transcript"] = json!(transcript
                        .iter()
                        .map(|l| json!({"at": l.at.to_rfc3339(), "sender": sender(&l.sender), "text": l.text}))
                        .collect::<Vec<_>>());
                    v["ratings"] = json!(ratings.iter().map(|r| json!({"score": r.score, "comment": r.comment})).collect::<Vec<_>>());
                    v["label"] = json!(label);
                    v["failed_deliveries"] = json!(failed
                        .iter()
                        .map(|f| json!({"id": f.id, "platform": f.platform, "kind": f.kind, "text": f.text, "error": f.error, "failed_at": f.failed_at.to_rfc3339()}))
                        .collect::<Vec<_>>());
                    outln!(out, "{v}");
                } else {
                    let t = &ticket;
                    outln!(out, "ticket {} — code {} — {} — {}", t.id, t.code, t.priority.as_str(), t.status.as_str());
                    outln!(out, "user      {} ({} {})", visible(&t.user_name), t.conversation.platform, visible(&t.conversation.user_id));
                    outln!(out, "intent    {}", t.intent.as_deref().unwrap_or("-"));
                    outln!(out, "reason    {}", t.reason);
                    if let Some(a) = &t.assignee {
                        outln!(out, "assignee  {a}");
                    }
                    for d in &t.details {
                        outln!(out, "{:<9} {}", d.name, visible(d.value.as_deref().unwrap_or("(skipped)")));
                    }
                    for r in &ratings {
                        outln!(out, "rating    {}/5 {}", r.score, visible(r.comment.as_deref().unwrap_or("")));
                    }
                    if let Some(l) = &label {
                        outln!(out, "label     {} (by {}): {}", describe(l), visible(&l.labelled_by), visible(&l.text));
                    }
                    for f in &failed {
                        outln!(out, "NOT DELIVERED [{}] {} {}: {} — {}", f.failed_at.format("%Y-%m-%d %H:%M:%S"), f.platform, f.kind, visible(&f.text), visible(&f.error));
                    }
                    outln!(out, "\ntranscript:");
                    for l in &transcript {
                        outln!(out, "[{}] {}: {}", l.at.format("%Y-%m-%d %H:%M:%S"), visible(&sender(&l.sender)), visible(&l.text));
                    }
                }
            }
            DeskAction::Claim { id, staff } => {
                let t = act(&service, &id, &staff, StaffAction::Claim).await?;
                outln!(out, "{staff} claimed ticket {} ({})", t.id, t.code);
            }
            DeskAction::Reply { id, staff, text } => {
                let t = act(&service, &id, &staff, StaffAction::Reply(text)).await?;
                outln!(out, "sent to {} on {}", visible(&t.user_name), t.conversation.platform);
            }
            DeskAction::Resolve { id, staff, label } => {
                let t = act(&service, &id, &staff, StaffAction::Resolve).await?;
                outln!(out, "ticket {} ({}) resolved; the user is asked to rate the help", t.id, t.code);
                if let Some(label) = label {
                    // The ticket is resolved whatever happens here.
                    match service.label_ticket(t.id, &staff, label, Utc::now()).await {
                        Ok(Some(l)) => outln!(out, "labelled as {}: {}", describe(&l), visible(&l.text)),
                        Ok(None) => outln!(out, "not labelled: ticket {} is gone", t.id),
                        Err(e) => {
                            emit(&out)?;
                            return Err(Failure::Other(anyhow::Error::new(e).context(format!(
                                "ticket {} ({}) is resolved, but its label was not recorded",
                                t.id, t.code
                            ))));
                        }
                    }
                }
            }
            DeskAction::Label { id, staff, label } => {
                let t = find(&service, &id).await?;
                match service
                    .label_ticket(t.id, &staff, label, Utc::now())
                    .await
                    .map_err(other)?
                {
                    Some(l) => outln!(out, "ticket {} ({}) labelled as {}: {}", t.id, t.code, describe(&l), visible(&l.text)),
                    None => return Err(Failure::BadInput(anyhow::anyhow!("no ticket {}", t.id))),
                }
            }
            DeskAction::Release { id, staff } => {
                let t = act(&service, &id, &staff, StaffAction::Release).await?;
                outln!(out, "ticket {} ({}) is back in the queue", t.id, t.code);
            }
        }
        emit(&out)
    })
}

/// The ticket with this code, or else with this id. A code can be all digits (`234567`); an input
/// that is both one ticket's code and another's id means the code, which is what users quote.
async fn find(service: &Service, id: &str) -> Result<Ticket, Failure> {
    let by_code = service
        .store()
        .ticket_by_code(&id.to_uppercase())
        .await
        .map_err(store)?;
    let found = match (by_code, id.parse::<i64>()) {
        (Some(t), _) => Some(t),
        (None, Ok(n)) => service.store().ticket(n).await.map_err(store)?,
        (None, Err(_)) => None,
    };
    found.ok_or_else(|| {
        Failure::BadInput(anyhow::anyhow!(
            "no ticket {id:?}; fix: use an id or code from `kefu desk list`"
        ))
    })
}

/// Finds a ticket and acts on it; anything but `Done` is an error that says why.
async fn act(
    service: &Service,
    id: &str,
    staff: &str,
    action: StaffAction,
) -> Result<Ticket, Failure> {
    let t = find(service, id).await?;
    let o = service
        .staff_action(&StaffActor::named(staff), t.id, action.clone(), Utc::now())
        .await
        .map_err(other)?;
    let verb = action.verb();
    match o {
        StaffOutcome::Done => Ok(t),
        StaffOutcome::HeldBy(holder) => Err(Failure::Other(anyhow::anyhow!(
            "ticket {} ({}) is held by {holder}: only they can {verb} it",
            t.id,
            t.code
        ))),
        StaffOutcome::NotClaimed => Err(Failure::Other(anyhow::anyhow!(
            "ticket {} ({}) is waiting in the queue: claim it first (kefu desk claim {} --as {staff})",
            t.id,
            t.code,
            t.code
        ))),
        StaffOutcome::Closed => Err(Failure::Other(anyhow::anyhow!(
            "ticket {} ({}) is already {}: nothing to {verb}",
            t.id,
            t.code,
            service
                .store()
                .ticket(t.id)
                .await
                .ok()
                .flatten()
                .map_or("closed", |now| now.status.as_str())
        ))),
        StaffOutcome::NotFound => Err(Failure::BadInput(anyhow::anyhow!("no ticket {}", t.id))),
    }
}

/// Checks a label before the ticket is resolved; an intent against the KB at `nlu.kb` (loaded,
/// not trained). A bad label is bad input.
fn check_label(settings: &Settings, label: &Label) -> Result<(), Failure> {
    let kb = match label {
        Label::Intent(_) => Some(load_kb(&settings.nlu.kb)?),
        Label::NewTopic(_) | Label::NotAQuestion => None,
    };
    kefu_service::labels::check(label, kb.as_ref()).map_err(|e| {
        Failure::BadInput(anyhow::anyhow!(
            "{e} (KB {}); nothing was changed",
            settings.nlu.kb.display()
        ))
    })
}

/// A label as the desk prints it: `intent ID`, `new topic "NAME"`, `not a question`.
fn describe(l: &TicketLabel) -> String {
    let name = visible(l.name.as_deref().unwrap_or(""));
    match l.kind {
        kefu_service::LabelKind::Intent => format!("intent {name}"),
        kefu_service::LabelKind::NewTopic => format!("new topic \"{name}\""),
        kefu_service::LabelKind::NotAQuestion => "not a question".to_owned(),
    }
}

fn ticket_json(t: &Ticket) -> serde_json::Value {
    json!({
        "id": t.id,
        "code": t.code,
        "priority": t.priority.as_str(),
        "state": t.status.as_str(),
        "user": t.user_name,
        "platform": t.conversation.platform,
        "intent": t.intent,
        "reason": t.reason,
        "assignee": t.assignee,
        "details": t.details.iter().map(|d| json!({"name": d.name, "value": d.value})).collect::<Vec<_>>(),
        "created_at": t.created_at.to_rfc3339(),
    })
}

fn sender(s: &Sender) -> String {
    match s {
        Sender::User => "user".to_owned(),
        Sender::Bot => "bot".to_owned(),
        Sender::Staff(name) => format!("staff:{name}"),
    }
}

fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn store(e: kefu_store::StoreError) -> Failure {
    Failure::Other(e.into())
}

fn other(e: kefu_service::ServiceError) -> Failure {
    Failure::Other(e.into())
}
