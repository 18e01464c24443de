//! Proves the fake Discord in `tests/fake_discord` speaks what serenity expects: a real serenity
//! `Client` (HTTP through the fake as its proxy, ratelimiter off) connects to the fake gateway,
//! receives dispatches, answers over HTTP, reconnects and RESUMEs after a dropped connection.

#![recursion_limit = "256"]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

mod fake_discord;

use std::sync::{Arc, Mutex};

use fake_discord::{
    BOT_ID, CHANNEL, Fake, GUILD, STAFF_CHANNEL, STAFF_ROLE, TOKEN, buttons, content, posts_to,
};
use serde_json::json;
use serenity::all::{
    ButtonStyle, ChannelId, ChannelType, ComponentInteraction, Context, CreateActionRow,
    CreateAttachment, CreateButton, CreateInteractionResponse, CreateMessage, CreateThread,
    CurrentApplicationInfo, CurrentUser, EditThread, EventHandler, GatewayIntents, Guild,
    GuildChannel, Http, HttpBuilder, Interaction, Message, Ready, ResumedEvent, RoleId, UserId,
};

/// What the handler saw, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, s: &str) -> usize {
        self.all().iter().filter(|x| *x == s).count()
    }
}

struct Echo(Seen);

#[serenity::async_trait]
impl EventHandler for Echo {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        self.0.push(format!("ready {}", ready.user.name));
    }

    async fn guild_create(&self, ctx: Context, guild: Guild, _new: Option<bool>) {
        let cached = ctx
            .cache
            .guild(guild.id)
            .map(|g| g.channels.len())
            .unwrap_or(0);
        self.0
            .push(format!("guild {} channels {cached}", guild.id.get()));
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        self.0.push("resumed".to_owned());
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            return;
        }
        self.0.push(format!("message {}", msg.content));
        let mentioned = msg.mentions_me(&ctx).await.unwrap_or(false);
        let mut reply = CreateMessage::new().content(format!("echo: {}", msg.content));
        if msg.content.contains("file") {
            reply = reply.add_file(CreateAttachment::bytes(
                b"line one\nline two".to_vec(),
                "transcript.txt",
            ));
        }
        if msg.content.contains("button") {
            reply = reply.components(vec![CreateActionRow::Buttons(vec![
                CreateButton::new("fb:yes")
                    .label("Yes")
                    .style(ButtonStyle::Success),
                CreateButton::new("fb:no").label("No"),
            ])]);
        }
        if let Err(e) = msg.channel_id.send_message(&ctx.http, reply).await {
            self.0.push(format!("send error {e}"));
        }
        if mentioned {
            self.0.push("mentioned".to_owned());
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Component(component) = interaction {
            let by = component
                .member
                .as_ref()
                .map_or(component.user.id, |m| m.user.id);
            self.0.push(format!(
                "component {} by {} roles {:?}",
                component.data.custom_id,
                by.get(),
                component.member.as_ref().map(|m| m
                    .roles
                    .iter()
                    .map(|r| r.get())
                    .collect::<Vec<_>>())
            ));
            let r = component
                .create_response(&ctx.http, CreateInteractionResponse::Acknowledge)
                .await;
            self.0.push(format!("acknowledged {}", r.is_ok()));
        }
    }
}

fn http(fake: &Fake) -> Http {
    HttpBuilder::new(TOKEN)
        .proxy(&fake.url)
        .ratelimiter_disabled(true)
        .build()
}

/// Starts a real serenity client against the fake; returns what its handler sees.
async fn client(fake: &Fake) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen = Seen::default();
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client = serenity::all::ClientBuilder::new_with_http(http(fake), intents)
        .event_handler(Echo(seen.clone()))
        .await
        .expect("client");
    let task = tokio::spawn(async move {
        client.start().await.expect("client runs");
    });
    (seen, task)
}

async fn wait_seen(fake: &Fake, seen: &Seen, what: &str, pred: impl Fn(&[String]) -> bool) {
    let s = seen.clone();
    fake.wait_state(what, move |_| pred(&s.all())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_builders_deserialize_as_serenity_models() {
    let msg: Message = serde_json::from_value(fake_discord::message(
        5,
        CHANNEL,
        Some(GUILD),
        (42, "alice"),
        "hi",
        true,
        &[STAFF_ROLE],
    ))
    .expect("guild message");
    assert_eq!(msg.guild_id.map(|g| g.get()), Some(GUILD));
    assert!(msg.mentions_user_id(UserId::new(BOT_ID)));
    assert_eq!(
        msg.member.expect("member").roles[0].get(),
        STAFF_ROLE,
        "member roles"
    );
    let dm: Message = serde_json::from_value(fake_discord::message(
        6,
        777,
        None,
        (42, "alice"),
        "hi",
        false,
        &[],
    ))
    .expect("DM");
    assert!(dm.guild_id.is_none() && dm.member.is_none() && dm.content == "hi");

    let i: Interaction = serde_json::from_value(fake_discord::component_interaction(
        9,
        "tok",
        STAFF_CHANNEL,
        Some(GUILD),
        (7, "bob"),
        &[STAFF_ROLE],
        "staff:claim:1",
        8,
    ))
    .expect("guild interaction");
    let c: ComponentInteraction = i.into_message_component().expect("a component interaction");
    assert_eq!(c.data.custom_id, "staff:claim:1");
    assert_eq!(c.member.expect("member").roles[0].get(), STAFF_ROLE);
    assert_eq!(c.user.id.get(), 7, "serenity copies member.user to user");
    let i: Interaction = serde_json::from_value(fake_discord::component_interaction(
        10,
        "tok",
        777,
        None,
        (42, "alice"),
        &[],
        "fb:yes",
        8,
    ))
    .expect("DM interaction");
    let c = i.into_message_component().expect("component");
    assert!(c.member.is_none() && c.user.id.get() == 42);

    let guild: Guild = serde_json::from_value(fake_discord::guild_create()).expect("guild");
    assert_eq!(guild.channels.len(), 2);
    assert!(guild.roles.contains_key(&RoleId::new(STAFF_ROLE)));
    let _: CurrentUser = serde_json::from_value(fake_discord::bot_user()).expect("user");
    let _: CurrentApplicationInfo =
        serde_json::from_value(fake_discord::application()).expect("application");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_connects_receives_messages_and_answers_over_http() {
    let fake = Fake::start().await;
    let (seen, _client) = client(&fake).await;
    wait_seen(&fake, &seen, "READY and GUILD_CREATE", |s| {
        s.contains(&format!("ready {}", fake_discord::BOT_NAME))
            && s.contains(&format!("guild {GUILD} channels 2"))
    })
    .await;
    let intents = fake.intents().expect("identified");
    let wanted = (GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT)
        .bits();
    assert_eq!(intents, wanted);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/gateway"),
        "serenity asked for the gateway URL through the proxy"
    );

    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(11, CHANNEL, Some(GUILD), (42, "alice"), "hello", true, &[]),
    );
    let echo = fake
        .wait_for("the echo", |r| {
            r.method == "POST" && r.path == format!("/channels/{CHANNEL}/messages")
        })
        .await;
    assert_eq!(content(&echo), format!("echo: <@{BOT_ID}> hello"));
    wait_seen(&fake, &seen, "the mention detected", |s| {
        s.contains(&"mentioned".to_owned())
    })
    .await;

    // A DM with buttons; then a click on them is acknowledged (deferred update, type 6).
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(12, 777, None, (42, "alice"), "button please", false, &[]),
    );
    let with_buttons = fake
        .wait_for("the echo with buttons", |r| !buttons(r).is_empty())
        .await;
    assert_eq!(
        buttons(&with_buttons),
        vec![
            ("Yes".to_owned(), "fb:yes".to_owned()),
            ("No".to_owned(), "fb:no".to_owned())
        ]
    );
    assert_eq!(posts_to(&fake.requests(), 777).len(), 1);
    fake.dispatch(
        "INTERACTION_CREATE",
        fake_discord::component_interaction(
            13,
            "itoken",
            STAFF_CHANNEL,
            Some(GUILD),
            (7, "bob"),
            &[STAFF_ROLE],
            "staff:claim:1",
            99,
        ),
    );
    let callback = fake
        .wait_for("the interaction callback", |r| {
            r.path == "/interactions/13/itoken/callback"
        })
        .await;
    assert_eq!(callback.body["type"], json!(6));
    wait_seen(&fake, &seen, "the callback succeeded", |s| {
        s.contains(&format!(
            "component staff:claim:1 by 7 roles Some([{STAFF_ROLE}])"
        )) && s.contains(&"acknowledged true".to_owned())
    })
    .await;

    // An attachment goes as multipart: payload_json + files[0].
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(14, CHANNEL, Some(GUILD), (42, "alice"), "file", false, &[]),
    );
    let upload = fake.wait_for("the upload", |r| !r.files.is_empty()).await;
    assert_eq!(
        upload.files,
        vec![("transcript.txt".to_owned(), "line one\nline two".to_owned())]
    );
    assert_eq!(content(&upload), "echo: file");
    assert_eq!(upload.body["attachments"][0]["filename"], "transcript.txt");
    assert!(
        !seen.all().iter().any(|s| s.starts_with("send error")),
        "{:?}",
        seen.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_resumed_and_missed_events_replayed_once() {
    let fake = Fake::start().await;
    let (seen, _client) = client(&fake).await;
    fake.wait_connected().await;
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(
            21,
            CHANNEL,
            Some(GUILD),
            (42, "alice"),
            "before",
            false,
            &[],
        ),
    );
    fake.wait_until("the first echo", |r| posts_to(r, CHANNEL).len() == 1)
        .await;

    fake.drop_connection();
    // Sent while no connection is up: delivered on the RESUME.
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(
            22,
            CHANNEL,
            Some(GUILD),
            (42, "alice"),
            "missed",
            false,
            &[],
        ),
    );
    fake.wait_state("a RESUME", |f| f.resumes() == 1).await;
    wait_seen(&fake, &seen, "RESUMED", |s| {
        s.contains(&"resumed".to_owned())
    })
    .await;
    // Each event is handled on its own task, so two echoes can overtake each other: the replayed
    // message is answered before the next one is sent.
    fake.wait_until("the replayed echo", |r| posts_to(r, CHANNEL).len() == 2)
        .await;
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(23, CHANNEL, Some(GUILD), (42, "alice"), "after", false, &[]),
    );
    let reqs = fake
        .wait_until("three echoes", |r| posts_to(r, CHANNEL).len() >= 3)
        .await;
    let echoes: Vec<&str> = posts_to(&reqs, CHANNEL).into_iter().map(content).collect();
    assert_eq!(echoes, ["echo: before", "echo: missed", "echo: after"]);
    assert_eq!(fake.connections(), 2);
    assert_eq!(fake.identifies(), 1, "resumed, not identified again");
    assert_eq!(seen.count("message missed"), 1);
    let resume = fake
        .gateway_in()
        .into_iter()
        .find(|p| p["op"] == json!(6))
        .expect("a RESUME payload");
    assert_eq!(resume["d"]["session_id"], fake_discord::SESSION_ID);

    // Dispatches sent but not yet read when the socket dies are replayed by seq, exactly once.
    fake.dispatch(
        "MESSAGE_CREATE",
        fake_discord::message(
            24,
            CHANNEL,
            Some(GUILD),
            (42, "alice"),
            "in flight",
            false,
            &[],
        ),
    );
    fake.drop_connection();
    fake.wait_state("a second RESUME", |f| f.resumes() == 2)
        .await;
    fake.wait_until("the in-flight echo", |r| {
        posts_to(r, CHANNEL)
            .iter()
            .any(|r| content(r) == "echo: in flight")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(seen.count("message in flight"), 1, "{:?}", seen.all());
    assert_eq!(fake.identifies(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_and_rate_limits_over_http() {
    let fake = Fake::start().await;
    let http = http(&fake);

    let thread = ChannelId::new(STAFF_CHANNEL)
        .create_thread(
            &http,
            CreateThread::new("T-1 · high · withdrawal")
                .kind(ChannelType::PrivateThread)
                .invitable(false),
        )
        .await
        .expect("private thread");
    assert_eq!(thread.kind, ChannelType::PrivateThread);
    assert_eq!(thread.parent_id.map(|p| p.get()), Some(STAFF_CHANNEL));
    thread
        .id
        .add_thread_member(&http, UserId::new(7))
        .await
        .expect("add member");
    let fetched: GuildChannel = thread
        .id
        .to_channel(&http)
        .await
        .expect("get channel")
        .guild()
        .expect("a guild channel");
    assert_eq!(fetched.name, "T-1 · high · withdrawal");
    let mut edited = thread.clone();
    edited
        .edit_thread(&http, EditThread::new().archived(true).locked(true))
        .await
        .expect("edit thread");
    let meta = edited.thread_metadata.expect("thread metadata");
    assert!(meta.archived && meta.locked);

    let posted = ChannelId::new(CHANNEL)
        .say(&http, "ticket")
        .await
        .expect("send");
    let public = ChannelId::new(CHANNEL)
        .create_thread_from_message(&http, posted.id, CreateThread::new("public"))
        .await
        .expect("thread from message");
    assert_eq!(public.id.get(), posted.id.get(), "Discord's rule");
    posted.delete(&http).await.expect("delete");
    let reqs = fake.requests();
    assert!(reqs.iter().any(
        |r| r.method == "PUT" && r.path == format!("/channels/{}/thread-members/7", thread.id)
    ));
    assert!(
        reqs.iter().any(|r| r.method == "DELETE"
            && r.path == format!("/channels/{CHANNEL}/messages/{}", posted.id))
    );
    let patch = reqs
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("the PATCH");
    assert_eq!(patch.body, json!({"archived": true, "locked": true}));

    // 429 with the ratelimiter off: serenity hands it to the caller as
    // Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse { status_code: 429, .. })). The
    // Retry-After header and the body's retry_after are NOT kept: ErrorResponse.error is a
    // DiscordJsonError { code, message, errors }, which needs a `code` Discord's 429 body lacks, so
    // it even decodes to code -1 with a "[Serenity] Could not decode json" message.
    fake.limit_next_sends(1);
    let err = ChannelId::new(CHANNEL)
        .say(&http, "limited")
        .await
        .expect_err("429");
    let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) = &err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(response.status_code.as_u16(), 429);
    assert_eq!(response.error.code, -1, "{:?}", response.error);
    assert!(fake.requests().iter().any(|r| r.limited));
    ChannelId::new(CHANNEL)
        .say(&http, "after the limit")
        .await
        .expect("the next send goes through");
    let reqs = fake.requests();
    assert_eq!(
        posts_to(&reqs, CHANNEL)
            .into_iter()
            .map(content)
            .collect::<Vec<_>>(),
        ["ticket", "after the limit"]
    );
}
