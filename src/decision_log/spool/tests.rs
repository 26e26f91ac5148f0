use std::io::Write;

use rusqlite::Connection;

use super::*;

fn limits(max_bytes: u64, when_full: WhenFull) -> Limits {
    Limits {
        max_bytes,
        max_events: None,
        when_full,
    }
}

/// Opens the spool in `dir` once the writer of a dropped one has let go of it.
async fn reopen(dir: &Path, segment_bytes: u64) -> Spool {
    let config = SpoolConfig::default();
    loop {
        match Spool::open_with(
            dir,
            &config,
            limits(1 << 20, WhenFull::Refuse),
            None,
            segment_bytes,
        ) {
            Ok(s) => break s,
            Err(SpoolError::Storage { message, .. }) if message.contains("in use") => {
                tokio::task::yield_now().await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn bodies(rows: &Rows) -> Vec<&[u8]> {
    rows.iter().map(|r| r.1.as_slice()).collect()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    Log::segment_files(dir)
}

#[tokio::test]
async fn events_survive_reopening_and_leave_only_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = reopen(dir.path(), SEGMENT_BYTES).await;
        for i in 0..5 {
            spool
                .append(format!("{{\"n\":{i}}}").into_bytes())
                .await
                .unwrap();
        }
        let peeked_rows = spool.peek(1 << 20).await.unwrap();
        let rows = &peeked_rows.rows;
        assert_eq!(rows.len(), 5);
        assert_eq!(spool.ack(peeked_rows.through(rows[1].0)).await.unwrap(), 2);
    }
    // The writer goes with the last handle: the files are released.
    let spool = reopen(dir.path(), SEGMENT_BYTES).await;
    let rows = spool.peek(1 << 20).await.unwrap().rows;
    assert_eq!(
        bodies(&rows),
        vec![&b"{\"n\":2}"[..], b"{\"n\":3}", b"{\"n\":4}"]
    );
}

#[tokio::test]
async fn a_full_spool_refuses_or_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::default();
    let refuse = Spool::open(
        &dir.path().join("r"),
        &config,
        limits(10, WhenFull::Refuse),
        None,
    )
    .unwrap();
    refuse.append(b"12345".to_vec()).await.unwrap();
    refuse.append(b"67890".to_vec()).await.unwrap();
    assert!(matches!(
        refuse.append(b"x".to_vec()).await,
        Err(SpoolError::Full(10))
    ));

    let drop = Spool::open(
        &dir.path().join("d"),
        &config,
        limits(10, WhenFull::DropOldest),
        None,
    )
    .unwrap();
    for e in [&b"12345"[..], b"67890", b"abcde"] {
        drop.append(e.to_vec()).await.unwrap();
    }
    let rows = drop.peek(100).await.unwrap().rows;
    assert_eq!(bodies(&rows), vec![&b"67890"[..], b"abcde"]);
    assert!(matches!(
        drop.append(vec![b'x'; 11]).await,
        Err(SpoolError::Full(10))
    ));
    // Dropped within one group: the last two of six concurrent events are left.
    let group = (0..6).map(|i| drop.append(format!("grp-{i}").into_bytes()));
    for done in futures_util::future::join_all(group).await {
        done.unwrap();
    }
    let rows = drop.peek(100).await.unwrap().rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].1, b"grp-5");
}

#[tokio::test]
async fn concurrent_events_share_writes_and_leave_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let spool = reopen(dir.path(), SEGMENT_BYTES).await;
    let appends = (0..500).map(|i| spool.append(format!("{i}").into_bytes()));
    for done in futures_util::future::join_all(appends).await {
        done.unwrap();
    }

    // Acknowledged part-way: the rest stays, in order.
    let peeked_all = spool.peek(1 << 20).await.unwrap();
    let all = &peeked_all.rows;
    let mut numbers: Vec<u32> = all
        .iter()
        .map(|(_, e)| std::str::from_utf8(e).unwrap().parse().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..500).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids grow");
    assert_eq!(
        spool.ack(peeked_all.through(all[249].0)).await.unwrap(),
        250
    );
    let rest = spool.peek(1 << 20).await.unwrap().rows;
    assert_eq!(rest, all[250..].to_vec());
    // An id acknowledged again removes nothing.
    assert_eq!(spool.ack(peeked_all.through(all[249].0)).await.unwrap(), 0);
    assert_eq!(spool.peek(1).await.unwrap().rows.len(), 1, "at least one");
    assert_eq!(
        spool.ack(peeked_all.through(all[499].0)).await.unwrap(),
        250
    );
    assert!(spool.peek(1 << 20).await.unwrap().rows.is_empty());
}

#[tokio::test]
async fn a_second_process_cannot_take_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::default();
    let l = limits(1 << 20, WhenFull::Refuse);
    let _first = Spool::open(dir.path(), &config, l, None).unwrap();
    let second = Spool::open(dir.path(), &config, l, None);
    assert!(
        matches!(&second, Err(SpoolError::Storage { message, .. }) if message.contains("in use")),
        "{second:?}"
    );
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_earlier_events_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (n, tail) in [
        &b"\x00\x00\x00"[..],                      // a partial header
        b"\x64\x00\x00\x00\x01\x02\x03\x04half a", // a frame of 100 bytes cut short
        &[0u8; 64],                                // zeros: a file extended, never written
        b"\x02\x00\x00\x00\xff\xff\xff\xffab",     // a whole frame, wrong checksum
    ]
    .into_iter()
    .enumerate()
    {
        let dir = dir.path().join(n.to_string());
        {
            let spool = reopen(&dir, SEGMENT_BYTES).await;
            for e in [&b"one"[..], b"two"] {
                spool.append(e.to_vec()).await.unwrap();
            }
        }
        let segment = segment_files(&dir).pop().unwrap();
        let good = std::fs::metadata(&segment).unwrap().len();
        let mut f = File::options().append(true).open(&segment).unwrap();
        f.write_all(tail).unwrap();
        let spool = reopen(&dir, SEGMENT_BYTES).await;
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), good, "case {n}");
        spool.append(b"three".to_vec()).await.unwrap();
        let rows = spool.peek(1 << 20).await.unwrap().rows;
        assert_eq!(
            bodies(&rows),
            vec![&b"one"[..], b"two", b"three"],
            "case {n}"
        );
    }
}

#[tokio::test]
async fn segments_roll_and_leave_once_consumed() {
    let dir = tempfile::tempdir().unwrap();
    // 28-byte frames, three to a segment.
    let event = |i: usize| format!("event-number-{i:07}").into_bytes();
    {
        let spool = reopen(dir.path(), 90).await;
        for i in 0..20 {
            spool.append(event(i)).await.unwrap();
        }
        assert_eq!(segment_files(dir.path()).len(), 7);
        let peeked_rows = spool.peek(1 << 20).await.unwrap();
        let rows = &peeked_rows.rows;
        assert_eq!(rows.len(), 20);
        // Part-way into the third segment: the first two go.
        assert_eq!(spool.ack(peeked_rows.through(rows[7].0)).await.unwrap(), 8);
        assert_eq!(segment_files(dir.path()).len(), 5);
    }
    let spool = reopen(dir.path(), 90).await;
    let peeked_rows = spool.peek(1 << 20).await.unwrap();
    let rows = &peeked_rows.rows;
    let expected: Vec<Vec<u8>> = (8..20).map(event).collect();
    assert_eq!(
        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        expected
    );
    // Everything taken: only the segment being written is left.
    assert_eq!(
        spool.ack(peeked_rows.through(rows[11].0)).await.unwrap(),
        12
    );
    assert_eq!(segment_files(dir.path()).len(), 1);
    spool.append(event(20)).await.unwrap();
    assert_eq!(
        bodies(&spool.peek(1 << 20).await.unwrap().rows),
        vec![&event(20)[..]]
    );
}

#[tokio::test]
async fn dropping_the_oldest_walks_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig::default();
    let l = limits(100, WhenFull::DropOldest);
    let spool = Spool::open_with(dir.path(), &config, l, None, 64).unwrap();
    for i in 0..50u32 {
        spool.append(format!("{i:010}").into_bytes()).await.unwrap();
    }
    let rows = spool.peek(1 << 20).await.unwrap().rows;
    let expected: Vec<Vec<u8>> = (40..50u32)
        .map(|i| format!("{i:010}").into_bytes())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test]
async fn a_spool_of_a_row_per_event_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("spool.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event BLOB NOT NULL);
             INSERT INTO events (event) VALUES (CAST('{\"n\":1}' AS BLOB)), (CAST('{\"n\":2}' AS BLOB));",
        )
        .unwrap();
    }
    let spool = reopen(dir.path(), SEGMENT_BYTES).await;
    let rows = spool.peek(1 << 20).await.unwrap().rows;
    assert_eq!(bodies(&rows), vec![&b"{\"n\":1}"[..], b"{\"n\":2}"]);
    assert!(!dir.path().join("spool.db").exists());
}

#[tokio::test]
async fn a_spool_of_a_row_per_group_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("spool.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE event_groups (seq INTEGER PRIMARY KEY, sizes BLOB NOT NULL, events BLOB NOT NULL);",
        )
        .unwrap();
        let sizes = |s: &[u32]| s.iter().flat_map(|n| n.to_le_bytes()).collect::<Vec<u8>>();
        conn.execute(
            "INSERT INTO event_groups (sizes, events) VALUES (?1, ?2), (?3, ?4)",
            rusqlite::params![
                sizes(&[1, 2]),
                b"abb".to_vec(),
                sizes(&[3]),
                b"ccc".to_vec()
            ],
        )
        .unwrap();
    }
    let spool = reopen(dir.path(), SEGMENT_BYTES).await;
    let rows = spool.peek(1 << 20).await.unwrap().rows;
    assert_eq!(bodies(&rows), vec![&b"a"[..], b"bb", b"ccc"]);
    assert!(!dir.path().join("spool.db").exists());
    assert!(!dir.path().join("spool.db-wal").exists());
}

#[tokio::test]
async fn a_synchronous_full_spool_rolls_and_acks_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        synchronous: Synchronous::Full,
        ..SpoolConfig::default()
    };
    let l = limits(1 << 20, WhenFull::Refuse);
    {
        let spool = Spool::open_with(dir.path(), &config, l, None, 64).unwrap();
        for i in 0..10u32 {
            spool.append(format!("{i:010}").into_bytes()).await.unwrap();
        }
        let peeked_rows = spool.peek(1 << 20).await.unwrap();
        let rows = &peeked_rows.rows;
        assert_eq!(spool.ack(peeked_rows.through(rows[5].0)).await.unwrap(), 6);
    }
    let spool = loop {
        match Spool::open_with(dir.path(), &config, l, None, 64) {
            Ok(s) => break s,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let rows = spool.peek(1 << 20).await.unwrap().rows;
    let expected: Vec<Vec<u8>> = (6..10u32)
        .map(|i| format!("{i:010}").into_bytes())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        expected
    );
}

/// The spool's `verdict_decision_log_spool_writes_total` as `/metrics` shows it.
fn writes(metrics: &crate::telemetry::metrics::Metrics) -> u64 {
    let text = String::from_utf8(metrics.render(&[])).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("verdict_decision_log_spool_writes_total "))
        .unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn events_that_wait_for_the_writer_are_committed_with_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = crate::telemetry::metrics::Metrics::new().unwrap();
    let l = limits(1 << 20, WhenFull::Refuse);
    // Each append of a `full` spool syncs on a blocking thread: the first one hands the
    // writer to the drainer with its event, and the 99 that come meanwhile queue behind it.
    let config = SpoolConfig {
        synchronous: Synchronous::Full,
        ..SpoolConfig::default()
    };
    let spool = Spool::open(dir.path(), &config, l, Some(metrics.spool())).unwrap();
    let appends = (0..100).map(|i| spool.append(format!("{i}").into_bytes()));
    for done in futures_util::future::join_all(appends).await {
        done.unwrap();
    }
    assert_eq!(writes(&metrics), 1, "a hundred events, one write");
    let peeked = spool.peek(1 << 20).await.unwrap();
    assert_eq!((peeked.rows.len(), peeked.all), (100, true));
    assert!(!spool.peek(1).await.unwrap().all, "one of a hundred");

    // A free writer is taken by the event itself: one write each, nothing waits.
    let dir = tempfile::tempdir().unwrap();
    let metrics = crate::telemetry::metrics::Metrics::new().unwrap();
    let spool = Spool::open(
        dir.path(),
        &SpoolConfig::default(),
        l,
        Some(metrics.spool()),
    );
    let spool = spool.unwrap();
    for i in 0..10 {
        spool.append(format!("{i}").into_bytes()).await.unwrap();
    }
    assert_eq!(writes(&metrics), 10);
}

#[tokio::test]
async fn a_read_whose_segment_was_consumed_meanwhile_ends_early() {
    let dir = tempfile::tempdir().unwrap();
    let spool = reopen(dir.path(), 64).await;
    for i in 0..6u32 {
        spool.append(format!("{i:040}").into_bytes()).await.unwrap();
    }
    let view = spool.upload(Upload::View).await.unwrap();
    // A full spool dropped the oldest segment after the view was taken.
    std::fs::remove_file(&segment_files(dir.path())[0]).unwrap();
    let peeked = view.peek(1 << 20).unwrap();
    assert!(peeked.rows.is_empty() && !peeked.all, "{peeked:?}");
    assert!(spool.ack(peeked.through(i64::MAX)).await.unwrap() == 0);
}
