//! A slow or stalled client must not starve others, nor keep the server from
//! stopping: the body idle timeout, the shutdown grace period.

use crate::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Starts an upload that announces 16 MiB, sends 6 MiB — more than the
/// first 5 MiB part, so the store has begun writing it — and stalls.
fn stalled_upload(s: &Server) -> TcpStream {
    let mut conn = TcpStream::connect(s.addr()).unwrap();
    let head = format!(
        "POST /api/v1/artifacts?filename=big.onnx HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ncontent-length: 16777216\r\n\r\n",
        s.addr(),
        s.admin_token
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&vec![7u8; 6 * 1024 * 1024]).unwrap();
    conn.flush().unwrap();
    conn
}

/// One raw request with a small body; the status line and the whole answer.
fn send_upload(s: &Server, body: &[u8]) -> (String, String) {
    let mut conn = TcpStream::connect(s.addr()).unwrap();
    let head = format!(
        "POST /api/v1/artifacts?filename=small.onnx HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        s.addr(),
        s.admin_token,
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    (answer.lines().next().unwrap_or_default().to_string(), answer)
}

#[test]
fn a_stalled_upload_holds_only_a_transfer_slot_and_is_cut_off() {
    let s = Server::start_with(None, &["--body-idle-timeout", "3", "--max-concurrent-transfers", "1"]);
    let mut slow = stalled_upload(&s);
    // Its handler holds the only transfer slot once the upload's temporary
    // file exists; then another upload is shed at once with 503 rather than
    // queued behind it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while walk(&s.path("data/artifacts/tmp")).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the stalled upload never started writing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, shed) = send_upload(&s, b"small");
    assert!(status.starts_with("HTTP/1.1 503"), "{shed}");
    assert!(shed.contains("as many requests as it allows"), "{shed}");
    // JSON requests have slots of their own: writes and reads are served.
    for i in 0..10 {
        let out = s.cli(&["models", "create", &format!("m{i}"), "--kind", "rules", "--risk-tier", "low"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(s.json(&["models", "list"])["models"].as_array().unwrap().len(), 10);
    // The stalled upload is answered 408 naming the body, and nothing is kept.
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""field":"body""#) && answer.contains("sent nothing for 3 s"), "{answer}");
    let stored: Vec<_> = walk(&s.path("data/artifacts"));
    assert!(stored.is_empty(), "a stalled upload left {stored:?}");
    // Its slot is free again.
    let (status, answer) = send_upload(&s, b"small");
    assert!(status.starts_with("HTTP/1.1 201"), "{answer}");
}

#[test]
fn shutdown_does_not_wait_forever_for_a_stalled_upload() {
    let mut s = Server::start_with(None, &["--body-idle-timeout", "600", "--shutdown-grace", "1"]);
    let _slow = stalled_upload(&s);
    assert!(s.json(&["models", "list"])["models"].as_array().unwrap().is_empty());
    let status = s.terminate(Duration::from_secs(30)).expect("the server still runs 30 s after SIGTERM");
    assert!(status.success(), "{status}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
