//! Going around the store, as someone holding the database would: the
//! triggers refuse rewriting history, and once they are dropped, the hash
//! chain names the first broken link.

use crate::harness::*;
use modelops_core::audit::{AuditEvent, PendingEvent};
use modelops_core::clock::{format_time, MockClock};
use modelops_core::name::AliasName;
use modelops_core::repo::{verify_chain, AuditLog};
use modelops_store::SqliteStore;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use std::path::Path;
use std::sync::Arc;

pub enum RawConn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl RawConn {
    pub async fn open(raw: &Raw) -> Self {
        match raw {
            Raw::Sqlite(path) => RawConn::Sqlite(sqlite_conn(path).await),
            Raw::Postgres(options) => RawConn::Postgres(PgConnection::connect_with(&**options).await.unwrap()),
        }
    }

    pub async fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            RawConn::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(|_| ()),
            RawConn::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(|_| ()),
        }
    }

    async fn drop_triggers(&mut self) {
        let sql = match self {
            RawConn::Sqlite(_) => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_events_extend_head;",
            RawConn::Postgres(_) => "DROP TRIGGER audit_events_no_update ON audit_events; DROP TRIGGER audit_events_extend_head ON audit_events;",
        };
        self.exec(sql).await.unwrap();
    }
}

async fn sqlite_conn(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path)).await.unwrap()
}

/// Builds a chain of 8 events through the store, a second apart.
async fn build_chain(ctx: &Ctx) -> Vec<AuditEvent> {
    let s = &ctx.registry;
    for n in ["credit-risk", "fraud"] {
        s.create_model(&actor("ana"), new_model(n)).await.unwrap();
        ctx.clock.advance(chrono::Duration::seconds(1));
        for _ in 0..2 {
            s.create_version(&actor("ana"), &name(n), new_version()).await.unwrap();
            ctx.clock.advance(chrono::Duration::seconds(1));
        }
    }
    let staging = AliasName::parse("staging").unwrap();
    s.set_alias(&actor("ana"), &name("fraud"), &staging, 1).await.unwrap();
    s.set_alias(&actor("ana"), &name("fraud"), &staging, 2).await.unwrap();
    let events = chain(&*ctx.store, 0, 100).await;
    assert_eq!(events.len(), 8);
    assert!(verify_chain(&*ctx.store).await.unwrap().is_ok());
    events
}

/// An event a forger computes correctly on top of the last stored one.
fn forged_insert(events: &[AuditEvent]) -> String {
    let last = events.last().unwrap();
    let pending = PendingEvent {
        actor: "mallory".into(),
        action: "model.create".into(),
        subject: "model/backdoor".into(),
        before: None,
        after: Some(serde_json::json!({"forged": true})),
    };
    insert_sql(&pending.seal(Some(&last.head()), last.time).unwrap())
}

/// The statement that stores `e` as it is (quotes doubled, for the forger).
fn insert_sql(e: &AuditEvent) -> String {
    let text = |v: &Option<serde_json::Value>| v.as_ref().map_or("NULL".to_string(), |v| format!("'{}'", v.to_string().replace('\'', "''")));
    format!(
        "INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash, encoding) \
         VALUES ({}, '{}', '{}', '{}', '{}', {}, {}, '{}', '{}', {})",
        e.sequence,
        format_time(&e.time),
        e.actor,
        e.action,
        e.subject,
        text(&e.before),
        text(&e.after),
        e.prev_hash,
        e.hash,
        e.encoding.as_stored()
    )
}

/// A copy of the first event numbered `sequence`, which modelops never writes
/// below 1: such a row sorts before the chain and must not escape verification.
fn numbered_below_one(events: &[AuditEvent], sequence: i64) -> String {
    let mut e = events[0].clone();
    e.sequence = sequence;
    insert_sql(&e)
}

/// Each tampering and the sequence number verification must name. `sqlite`
/// adds what only SQLite's loose typing lets someone store.
fn scenarios(events: &[AuditEvent], sqlite: bool) -> Vec<(&'static str, String, i64)> {
    let mut all = vec![
        ("insert an event numbered 0", numbered_below_one(events, 0), 0),
        ("insert an event numbered -3", numbered_below_one(events, -3), -3),
        ("edit a field", "UPDATE audit_events SET actor = 'mallory' WHERE sequence = 3".into(), 3),
        ("edit a snapshot", "UPDATE audit_events SET after = replace(after, '\"high\"', '\"low\"') WHERE sequence = 1".into(), 1),
        ("edit a time", "UPDATE audit_events SET time = (SELECT time FROM audit_events WHERE sequence = 1) WHERE sequence = 6".into(), 6),
        ("delete a middle event", "DELETE FROM audit_events WHERE sequence = 4".into(), 4),
        ("delete the last event", "DELETE FROM audit_events WHERE sequence = 8".into(), 8),
        ("insert a forged event", forged_insert(events), 9),
        (
            "swap two events' sequence numbers",
            "UPDATE audit_events SET sequence = -1 WHERE sequence = 5; \
             UPDATE audit_events SET sequence = 5 WHERE sequence = 6; \
             UPDATE audit_events SET sequence = 6 WHERE sequence = -1"
                .into(),
            5,
        ),
    ];
    if sqlite {
        all.push(("edit a time into text that is no time", "UPDATE audit_events SET time = 'yesterday' WHERE sequence = 3".into(), 3));
        all.push(("make a hash a number", "UPDATE audit_events SET hash = x'00ff' WHERE sequence = 4".into(), 4));
    }
    all
}

pub async fn triggers_refuse_rewriting_history(ctx: &Ctx) {
    let events = build_chain(ctx).await;
    let mut raw = RawConn::open(&ctx.raw).await;
    for (what, sql, _) in scenarios(&events, matches!(ctx.raw, Raw::Sqlite(_))) {
        // A forged event that extends the chain correctly gets in; only the
        // separately kept head (checked by verification) exposes it.
        if what != "insert a forged event" {
            assert!(raw.exec(&sql).await.is_err(), "the database let through: {what}");
        }
    }
    // Sequence 9, but chained onto event 5's hash.
    let mut wrong_parent = events[4].clone();
    wrong_parent.sequence = 8;
    let out_of_chain = forged_insert(&[wrong_parent]);
    assert!(raw.exec(&out_of_chain).await.is_err(), "the database took an event that does not extend the head");
    let head_back = "UPDATE audit_head SET sequence = 7, hash = (SELECT hash FROM audit_events WHERE sequence = 7)";
    assert!(raw.exec(head_back).await.is_err(), "the head moved backwards");
    assert!(raw.exec("UPDATE audit_head SET sequence = 9").await.is_err(), "the head moved past the events");
    assert!(raw.exec("DELETE FROM audit_head").await.is_err(), "the head was deleted");
    assert_eq!(chain(&*ctx.store, 0, 100).await, events);
    assert!(verify_chain(&*ctx.store).await.unwrap().is_ok());
}

pub async fn editing_and_deleting_events_is_detected(ctx: &Ctx) {
    let events = build_chain(ctx).await;
    match &ctx.raw {
        Raw::Sqlite(path) => {
            // Each tampering on its own copy of the file.
            let dir = path.parent().unwrap();
            for (i, (what, sql, expected)) in scenarios(&events, true).into_iter().enumerate() {
                let copy = dir.join(format!("tampered-{i}.db"));
                let mut conn = sqlite_conn(path).await;
                sqlx::raw_sql(&format!("VACUUM INTO '{}'", copy.display())).execute(&mut conn).await.unwrap();
                let mut raw = RawConn::Sqlite(sqlite_conn(&copy).await);
                raw.drop_triggers().await;
                raw.exec(&sql).await.unwrap();
                let store = SqliteStore::open(&copy, Arc::new(MockClock::new(start_time()))).await.unwrap();
                assert_break(&store, what, expected).await;
                store.close().await;
            }
        }
        Raw::Postgres(_) => {
            let mut raw = RawConn::open(&ctx.raw).await;
            raw.drop_triggers().await;
            raw.exec("CREATE TABLE audit_backup AS SELECT * FROM audit_events").await.unwrap();
            for (what, sql, expected) in scenarios(&events, false) {
                raw.exec(&sql).await.unwrap();
                assert_break(&*ctx.store, what, expected).await;
                raw.exec("DELETE FROM audit_events; INSERT INTO audit_events SELECT * FROM audit_backup").await.unwrap();
                assert!(verify_chain(&*ctx.store).await.unwrap().is_ok(), "restored after: {what}");
            }
        }
    }
}

async fn assert_break(log: &dyn AuditLog, what: &str, expected: i64) {
    let verdict = verify_chain(log).await.unwrap();
    let broken = verdict.expect_err(what);
    assert_eq!(broken.sequence, expected, "{what}: {broken}");
}
