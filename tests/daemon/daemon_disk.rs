//! A real filesystem under the real `modelwatch daemon` process: its database lives on a small
//! tmpfs mounted for the test, and the test fills that tmpfs to the last byte (a filler file
//! written until ENOSPC) while the daemon probes the simulator. `/readyz` answers 503 naming the
//! store, `modelwatch_store_errors_total` counts the failures, the process stays up and keeps
//! probing; once the filler is deleted the next round is stored and `/readyz` is 200 again, with
//! `PRAGMA integrity_check` ok and every sample committed before the fault still there.
//!
//! The test also asks for a read-only remount of the tmpfs while the daemon runs. Linux refuses
//! it (EBUSY) as long as a file on it is open for writing, which the database always is; the
//! test checks that the refusal leaves the daemon storing. Should a kernel allow it, the same
//! fault cycle runs on the read-only filesystem, then on the remount read-write.
//!
//! A filesystem does turn read-only under open files when the kernel forces it: an ext4 image on
//! a loop device (on the tmpfs) mounted with `errors=remount-ro`, and an ext4 error raised
//! through sysfs. Writes fail, the daemon shows it the same way, and since the kernel keeps that
//! filesystem read-only until it is unmounted, recovery is the operator's: stop, `e2fsck`, mount,
//! start; no sample committed before the error is lost.
//!
//! Needs `mount` (root or CAP_SYS_ADMIN), and for the ext4 case `mkfs.ext4`, `losetup` and
//! `e2fsck`; skipped with a printed reason when they are not there. Rounds run every 10 s (the
//! shortest interval allowed): about 30 s.

use crate::daemon_proc;
use daemon_proc::{StoreDaemon, integrity, wait_until};
use rusqlite::{Connection, OpenFlags};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const TARGETS: usize = 3;

/// A tmpfs mounted on a fresh temporary directory, unmounted when dropped (also on panic; a
/// lazy unmount if the plain one is refused).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// The mounted tmpfs, or why mounting is not permitted here (other failures panic).
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("none")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if out.status.success() {
            return Ok(Tmpfs { dir });
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let lower = why.to_lowercase();
        let denied = [
            "permission denied",
            "only root",
            "not permitted",
            "superuser",
        ]
        .iter()
        .any(|w| lower.contains(w));
        assert!(
            denied,
            "mount failed for another reason than permissions: {why}"
        );
        Err(why)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mount -o remount,MODE`: the exit status and what mount said.
    fn remount(&self, mode: &str) -> (bool, String) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = self.remount("rw");
        let ok = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Ids of the stored samples (read-only connection; empty while the database cannot be read).
fn sample_ids(db: &Path) -> Vec<i64> {
    let Ok(c) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok(mut st) = c.prepare("SELECT id FROM samples ORDER BY id") else {
        return Vec::new();
    };
    st.query_map([], |r| r.get(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn store_errors(env: &StoreDaemon) -> u64 {
    let (_, metrics) = env.get("/metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("modelwatch_store_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Fills the filesystem of `dir` with one file until the write fails with ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(
                e.raw_os_error(),
                Some(28),
                "the filler stopped on something else than ENOSPC: {e}"
            );
            break;
        }
    }
    // The last bytes of a partly written chunk: one byte at a time until nothing fits.
    while f.write_all(&[0xa5]).is_ok() {}
    path
}

/// One fault on the running daemon: `fault` starts it, `clear` ends it. Checks that it shows
/// (503 naming the store, errors counted, process alive, probing on, nothing stored) and that
/// the daemon recovers by itself; returns the recovery time after `clear`.
fn fault_cycle(
    env: &StoreDaemon,
    child: &mut Child,
    name: &str,
    fault: impl FnOnce(),
    clear: impl FnOnce(),
) -> Duration {
    let errors_before = store_errors(env);
    fault();
    let rounds_at_fault = env.rounds();
    wait_until(&format!("{name}: /readyz 503 naming the store"), 25, || {
        let (code, body) = env.get("/readyz");
        code == 503 && body.contains("store not writable")
    });
    let (_, why) = env.get("/readyz");
    // Counted once the store has reported the fault: a round that committed just before the
    // fault took hold is not "stored during the fault".
    let stored = sample_ids(&env.db);
    let errors = store_errors(env);
    assert!(errors > errors_before, "{name}: no store error counted");
    assert!(
        env.get("/metrics").1.contains("modelwatch_store_up 0"),
        "{name}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "{name}: the daemon exited"
    );
    wait_until(&format!("{name}: rounds during the fault"), 25, || {
        env.rounds() >= rounds_at_fault + TARGETS as u64
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "{name}: the daemon exited"
    );
    assert_eq!(
        sample_ids(&env.db).len(),
        stored.len(),
        "{name}: samples stored during the fault?"
    );
    clear();
    let cleared = Instant::now();
    wait_until(
        &format!("{name}: /readyz 200 and samples stored again"),
        25,
        || env.get("/readyz").0 == 200 && sample_ids(&env.db).len() > stored.len(),
    );
    let recovered = cleared.elapsed();
    assert!(
        env.get("/metrics").1.contains("modelwatch_store_up 1"),
        "{name}"
    );
    println!(
        "{name}: /readyz said `{}`, {} store error(s) counted, recovered {:.1} s after the fault cleared",
        why.trim(),
        errors - errors_before,
        recovered.as_secs_f64()
    );
    recovered
}

#[test]
fn read_only_and_full_tmpfs() {
    let disk = match Tmpfs::mount("4m") {
        Ok(d) => d,
        Err(why) => {
            daemon_proc::skip(&format!(
                "read-only and full tmpfs: mounting a tmpfs is not permitted ({why})"
            ));
            return;
        }
    };
    let env = StoreDaemon::new(&disk.path().join("m.db"), "Explain mounts.", TARGETS);
    let (mut child, log) = env.start();
    let mut before_faults = Vec::new();
    let run = || {
        wait_until("the first stored round of every target", 30, || {
            env.get("/readyz").0 == 200 && sample_ids(&env.db).len() == 2 * TARGETS
        });
        before_faults = sample_ids(&env.db);

        let (remounted, said) = disk.remount("ro");
        if remounted {
            fault_cycle(
                &env,
                &mut child,
                "read-only remount",
                || {},
                || {
                    let (ok, said) = disk.remount("rw");
                    assert!(ok, "cannot remount read-write: {said}");
                },
            );
        } else {
            // Refused while the database is open for writing: the filesystem stays writable
            // and the daemon goes on storing.
            assert!(
                said.contains("busy"),
                "remount refused for another reason: {said}"
            );
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
            let line = mounts
                .lines()
                .find(|l| l.contains(&*disk.path().to_string_lossy()))
                .unwrap_or_default()
                .to_string();
            assert!(line.contains(" rw"), "{line}");
            let n = sample_ids(&env.db).len();
            wait_until("samples stored after the refused remount", 25, || {
                sample_ids(&env.db).len() > n && env.get("/readyz").0 == 200
            });
            println!(
                "read-only remount under the running daemon refused: `{said}`; the daemon kept storing"
            );
        }
        before_faults = sample_ids(&env.db);

        let filler = disk.path().join("filler");
        fault_cycle(
            &env,
            &mut child,
            "full tmpfs (ENOSPC)",
            || {
                fill(disk.path());
            },
            || std::fs::remove_file(&filler).unwrap(),
        );
        let text = log.lock().unwrap().clone();
        assert!(
            text.contains("cannot store") || text.contains("cannot commit"),
            "no error logged:\n{text}"
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = outcome {
        eprintln!("{}", log.lock().unwrap());
        std::panic::resume_unwind(e);
    }
    assert_eq!(integrity(&env.db), "ok");
    let after = sample_ids(&env.db);
    let lost: Vec<_> = before_faults
        .iter()
        .filter(|id| !after.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "samples committed before the faults lost: {lost:?}"
    );
}

/// An ext4 image on a loop device, mounted with `errors=remount-ro`; unmounted and detached
/// when dropped.
struct Ext4 {
    dev: String,
    mnt: PathBuf,
}

impl Ext4 {
    /// The mounted filesystem, or why the tools for it are missing here.
    fn create(image: &Path, mnt: &Path) -> Result<Ext4, String> {
        std::fs::File::create(image)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .output()
            .map_err(|e| format!("cannot run mkfs.ext4: {e}"))?;
        if !mkfs.status.success() {
            return Err(String::from_utf8_lossy(&mkfs.stderr).trim().to_string());
        }
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(image)
            .output()
            .map_err(|e| format!("cannot run losetup: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        std::fs::create_dir_all(mnt).unwrap();
        let fs = Ext4 {
            dev,
            mnt: mnt.to_path_buf(),
        };
        if !fs.mount() {
            return Err(format!("cannot mount {} as ext4", fs.dev));
        }
        Ok(fs)
    }

    fn mount(&self) -> bool {
        Command::new("mount")
            .args(["-o", "errors=remount-ro", &self.dev])
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// An ext4 error, as a failing disk would raise: the kernel makes the filesystem
    /// read-only under the open files.
    fn fail(&self) {
        let name = self.dev.trim_start_matches("/dev/");
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "1").unwrap();
    }

    /// What an operator does next: unmount, check, mount again.
    fn repair(&self) {
        let ok = Command::new("umount").arg(&self.mnt).status().unwrap();
        assert!(ok.success(), "cannot unmount {}", self.mnt.display());
        let fsck = Command::new("e2fsck")
            .args(["-f", "-y", &self.dev])
            .output()
            .unwrap();
        assert!(
            matches!(fsck.status.code(), Some(0 | 1)),
            "e2fsck: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        assert!(self.mount(), "cannot mount {} again", self.dev);
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn filesystem_forced_read_only_by_the_kernel() {
    let disk = match Tmpfs::mount("16m") {
        Ok(d) => d,
        Err(why) => {
            daemon_proc::skip(&format!(
                "forced read-only: mounting is not permitted ({why})"
            ));
            return;
        }
    };
    let ext4 = match Ext4::create(&disk.path().join("img"), &disk.path().join("mnt")) {
        Ok(fs) => fs,
        Err(why) => {
            daemon_proc::skip(&format!(
                "forced read-only: no ext4 on a loop device here ({why})"
            ));
            return;
        }
    };
    let env = StoreDaemon::new(&ext4.mnt.join("m.db"), "Explain mounts.", TARGETS);
    let (mut child, log) = env.start();
    let mut stored = Vec::new();
    let mut restarted = None;
    let run = || {
        wait_until("the first stored round of every target", 30, || {
            env.get("/readyz").0 == 200 && sample_ids(&env.db).len() == 2 * TARGETS
        });
        stored = sample_ids(&env.db);
        let errors_before = store_errors(&env);
        ext4.fail();
        let rounds_at_fault = env.rounds();
        // Nothing here reads the database during the fault: a reader writes to the shared
        // memory file too.
        wait_until("/readyz 503 naming the store", 25, || {
            let (code, body) = env.get("/readyz");
            code == 503 && body.contains("store not writable")
        });
        let (_, why) = env.get("/readyz");
        let errors = store_errors(&env);
        assert!(errors > errors_before, "no store error counted");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        wait_until("rounds during the fault", 25, || {
            env.rounds() >= rounds_at_fault + TARGETS as u64
        });
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        println!(
            "forced read-only (ext4 errors=remount-ro): /readyz said `{}`, {} store error(s) counted, probing went on",
            why.trim(),
            errors - errors_before
        );
        // The kernel keeps it read-only until it is unmounted: stop, repair, start again.
        child.kill().unwrap();
        child.wait().unwrap();
        let t = Instant::now();
        ext4.repair();
        let (again, again_log) = env.start();
        restarted = Some((again, again_log));
        wait_until(
            "/readyz 200 and samples stored after the restart",
            30,
            || env.get("/readyz").0 == 200 && sample_ids(&env.db).len() > stored.len(),
        );
        println!(
            "forced read-only: unmount, e2fsck, mount and restart to the first stored round: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = child.kill();
    let _ = child.wait();
    if let Some((mut c, _)) = restarted.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    if let Err(e) = outcome {
        eprintln!("{}", log.lock().unwrap());
        std::panic::resume_unwind(e);
    }
    assert_eq!(integrity(&env.db), "ok");
    let after = sample_ids(&env.db);
    let lost: Vec<_> = stored.iter().filter(|id| !after.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "samples committed before the fault lost: {lost:?}"
    );
}
