use crate::harness::*;
use modelops_core::clock::MockClock;
use modelops_core::ErrorKind;
use std::sync::Arc;

#[tokio::test]
async fn connect_picks_the_backend_from_the_url() {
    let clock = Arc::new(MockClock::new(start_time()));
    let dir = tempfile::tempdir().unwrap();
    // `sqlite:path` creates the file and its directory.
    let path = dir.path().join("nested").join("modelops.db");
    let url = format!("sqlite:{}", path.display());
    let store = modelops_store::connect(&url, clock.clone()).await.unwrap();
    registry_for(store.clone(), clock.clone(), dir.path()).await.create_model(&actor("ana"), new_model("m")).await.unwrap();
    assert!(path.exists());
    drop(store);
    // Reopening (and re-running migrations) keeps the data.
    modelops_store::migrate(&url).await.unwrap();
    let store = modelops_store::connect(&format!("sqlite://{}?mode=rwc", path.display()), clock.clone()).await.unwrap();
    assert_eq!(store.get_model(&name("m")).await.unwrap().name, name("m"));

    let memory = modelops_store::connect("sqlite::memory:", clock.clone()).await.unwrap();
    registry_for(memory.clone(), clock.clone(), dir.path()).await.create_model(&actor("ana"), new_model("m")).await.unwrap();
    assert_eq!(memory.get_model(&name("m")).await.unwrap().name, name("m"));

    let err = assert_kind(modelops_store::connect("mysql://localhost/db", clock).await.map(|_| ()), ErrorKind::InvalidInput);
    assert_eq!(err.field(), Some("database_url"));
}
