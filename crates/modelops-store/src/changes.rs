//! Hearing about changes other replicas commit: PostgreSQL announces every
//! audit event on the channel `modelops_changes` when its transaction commits
//! (migration 0012's trigger); a replica listens on a connection of its own
//! and forgets what it cached about each change.

use modelops_core::replica::{Change, Notice};
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel the trigger notifies on.
pub const CHANNEL: &str = "modelops_changes";

/// Notices waiting for the replica to act on them. The sender waits when
/// it is full (PostgreSQL keeps what it has not delivered yet): nothing is
/// dropped.
const QUEUE: usize = 4096;

/// Listens until the receiver is dropped. Sends `Missed` after every
/// connection, once it listens: what happened while nobody listened is
/// unknown, and what happens from then on is heard.
pub(crate) async fn listen_postgres(url: String, notices: mpsc::Sender<Notice>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes made by other replicas; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for changes made by other replicas; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if notices.send(Notice::Missed).await.is_err() {
            return;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(change) = Change::parse(notification.payload()) else { continue };
                    if notices.send(Notice::Changed(change)).await.is_err() {
                        return;
                    }
                }
                // The connection was lost. sqlx would reconnect on the next
                // call without saying so; a new listener is made instead, so
                // that `Missed` follows the moment it listens again.
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for other replicas' changes; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other replicas' changes failed; reconnecting in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

pub(crate) fn channel() -> (mpsc::Sender<Notice>, mpsc::Receiver<Notice>) {
    mpsc::channel(QUEUE)
}
