//! The real `verdict run` binary as a child process, its stderr log read line by line.

use std::process::{Command, Stdio};

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr};

use super::{repo, WAIT};

pub const BIN: &str = env!("CARGO_BIN_EXE_verdict");

/// A running `verdict run`, its stderr log read line by line.
pub struct Running {
    pub child: Child,
    log: tokio::io::Lines<BufReader<ChildStderr>>,
    /// Every log line read so far.
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(args: &[&str]) -> Running {
        Running::spawn_with_env(args, &[])
    }

    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Running {
        Running::spawn_in(&repo(), args, env)
    }

    /// Runs in `dir`, so that `-b` paths are named as the user typed them.
    pub fn spawn_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut command = tokio::process::Command::new(BIN);
        command.current_dir(dir).envs(env.iter().copied());
        Running::start(command, args)
    }

    /// Runs with a file-size limit (`prlimit --fsize`, util-linux): every write past `bytes`
    /// in any file fails, as on a disk that is full.
    pub fn spawn_with_file_size_limit(args: &[&str], bytes: u64) -> Running {
        let mut command = tokio::process::Command::new("prlimit");
        command
            .arg(format!("--fsize={bytes}:{bytes}"))
            .arg("--")
            .arg(BIN)
            .current_dir(repo());
        Running::start(command, args)
    }

    fn start(mut command: tokio::process::Command, args: &[&str]) -> Running {
        let mut child = command
            .arg("run")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = BufReader::new(child.stderr.take().unwrap()).lines();
        Running {
            child,
            log,
            seen: Vec::new(),
        }
    }

    /// The next log line containing `text`, as JSON.
    pub async fn wait_for_log(&mut self, text: &str) -> Json {
        let line = self.wait_for_line(text).await;
        serde_json::from_str::<Json>(&line).unwrap()
    }

    /// The next log line containing `text`, as it was written.
    pub async fn wait_for_line(&mut self, text: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = self.log.next_line().await.unwrap() {
                self.seen.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
            panic!("verdict exited before logging {text:?}");
        })
        .await;
        found.unwrap_or_else(|_| {
            let last: Vec<&String> = self.seen.iter().rev().take(20).rev().collect();
            panic!("no log line with {text:?} in time; the last lines were: {last:#?}")
        })
    }

    /// Stops verdict with SIGTERM and returns every line it logged, with its exit code.
    pub async fn stop(mut self) -> (Vec<String>, Option<i32>) {
        self.signal("TERM");
        let rest = tokio::time::timeout(WAIT, async {
            while let Some(line) = self.log.next_line().await.unwrap() {
                self.seen.push(line);
            }
        })
        .await;
        rest.unwrap_or_else(|_| panic!("verdict did not stop on SIGTERM in time"));
        let seen = std::mem::take(&mut self.seen);
        (seen, self.exit_code().await)
    }

    /// The TCP address from the "server started" line.
    pub async fn address(&mut self) -> String {
        let line = self.wait_for_log("server started").await;
        let addrs: Vec<String> = serde_json::from_str(line["addrs"].as_str().unwrap()).unwrap();
        addrs[0].clone()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap()
            .success());
    }

    pub async fn exit_code(mut self) -> Option<i32> {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap()
            .unwrap()
            .code()
    }
}

impl Running {
    /// SIGKILL: no shutdown code runs, as in a crash or an OOM kill.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap()
            .unwrap();
    }
}
