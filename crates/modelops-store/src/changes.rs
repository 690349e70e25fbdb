//! Hearing about changes other replicas commit: PostgreSQL announces every
//! audit event on the channel `modelops_changes` when its transaction commits
//! (migration 0012's trigger); a replica listens on a connection of its own
//! and forgets what it cached about each change.

use modelops_core::replica::{Change, Notice};
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel the trigger notifies on.
pub const CHANNEL: &str = "modelops_changes";

/// Notices waiting for the replica to act on them; past it, a `Missed`
/// stands for the ones dropped.
const QUEUE: usize = 4096;

/// Listens until the receiver is dropped. Sends `Missed` after every
/// (re)connection: what happened while nobody listened is unknown.
pub(crate) async fn listen_postgres(url: String, notices: mpsc::Sender<Notice>) {
    let mut dropped = false;
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
                    if dropped && notices.try_send(Notice::Missed).is_ok() {
                        dropped = false;
                    }
                    match notices.try_send(Notice::Changed(change)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => dropped = true,
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                // The connection was lost; the next call reconnects, and
                // what was said meanwhile is lost.
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for other replicas' changes; reconnecting");
                    if notices.send(Notice::Missed).await.is_err() {
                        return;
                    }
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
