//! The notice follower: drops cached projects when the store says they changed (on this
//! node or another), so a policy change is seen at once. It only forgets; it never reads
//! the store itself.

use std::sync::Arc;

use flywheel_store::Notice;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::app::AppState;

/// Drops cached projects when the store says they changed (on this node or another).
pub async fn follow_notices(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut notices = state.store.subscribe();
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                Ok(Notice::ProjectChanged { name }) => state.forget(&name),
                Ok(Notice::TasksAvailable { .. }) => {}
                Err(RecvError::Lagged(_)) => state.forget_all(),
                Err(RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}
