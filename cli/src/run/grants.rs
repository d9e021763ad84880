//! Grants as the caller sees them. A root caller's program runs as an outside user id
//! of its own (see `SANDBOX_ID_BASE`); bound plainly, a `--ro`/`--rw` folder only root
//! may enter (every `mktemp -d`) would stay closed to it, and what it writes would
//! belong to that id. So each of the caller's grants is bound as an idmapped mount
//! (`sandbox::launch::Idmap`): the caller's files appear as the program's own, and
//! what the program creates belongs to the caller on disk — a second run overwrites
//! the first run's outputs. Files of other users keep their owners' view ("others"
//! permissions; the owner shows as the overflow id, 65534).
//!
//! On a file system without idmapped mounts (the kernel answers EINVAL: NFS, 9p, FUSE
//! without support, some older ones), the grant is bound as it is: the program sees
//! the real owners and permissions and writes as its own id. That is said on stderr
//! and in the status report (`grants`), and `--uid 0` runs the program as the caller
//! (without a user id of its own) where that is wanted.
//!
//! An unprivileged caller's program runs as the caller (inside uid 0 is the caller):
//! its grants are bound plainly, as its own files already are its own.

use super::RunError;
use sandbox::launch::Idmap;
use sandbox::lockdown::Bind;
use serde::Serialize;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// How one `--ro`/`--rw` grant is bound, for the status report.
#[derive(Debug, Serialize)]
pub(super) struct GrantView {
    pub(super) path: PathBuf,
    pub(super) writable: bool,
    /// "idmapped" (owned by the caller outside = owned by the program inside) or
    /// "plain" (owners as they are).
    pub(super) mapping: &'static str,
    /// Why a root caller's grant is plain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) why_plain: Option<String>,
}

/// The idmapped trees for the grants, to send to the stage.
#[derive(Default)]
pub(super) struct Trees {
    /// Index in the plan's binds, and the tree's descriptor.
    pub(super) trees: Vec<(usize, OwnedFd)>,
    pub(super) views: Vec<GrantView>,
    /// The mapping, kept with the trees (dropped once the program has been told "go"):
    /// its maker is reaped when it drops, long after it exited.
    pub(super) _idmap: Option<Idmap>,
}

/// For the binds at `grants` (the caller's `--ro`/`--rw`): an idmapped tree each,
/// mapping the caller's `caller` (uid, gid) to the program's outside id, when there is
/// one (`program`: a root caller); plain otherwise, or where the file system cannot.
pub(super) fn idmapped_trees(
    binds: &[Bind],
    grants: std::ops::Range<usize>,
    caller: (u32, u32),
    program: Option<u32>,
) -> Result<Trees, RunError> {
    let mut out = Trees::default();
    let mine = binds.get(grants.clone()).unwrap_or_default().iter();
    let Some(program) = program else {
        out.views = mine.map(|g| view(g, "plain", None)).collect();
        return Ok(out);
    };
    if grants.is_empty() {
        return Ok(out);
    }
    let idmap = match Idmap::new(caller, program) {
        Ok(idmap) => idmap,
        Err(e) => {
            // No user namespace for the mapping (a host without them, with
            // --no-userns): every grant is bound as it is.
            let why = format!("no user namespace for the mapping: {e}");
            eprintln!(
                "sandbox: note: the grants are bound as they are ({why}): the program sees \
                 their owners and permissions as they are and what it writes belongs to its \
                 own user id"
            );
            out.views = mine.map(|g| view(g, "plain", Some(why.clone()))).collect();
            return Ok(out);
        }
    };
    for (i, g) in grants.zip(mine) {
        match idmap.tree(&g.path) {
            Ok(tree) => {
                out.trees.push((i, tree));
                out.views.push(view(g, "idmapped", None));
            }
            Err(e) => {
                let why = match e.raw_os_error() {
                    Some(libc::EINVAL) => {
                        "its file system does not support idmapped mounts".to_string()
                    }
                    _ => format!("an idmapped mount failed: {}", crate::words::io(&e)),
                };
                eprintln!(
                    "sandbox: note: {} is bound as it is ({why}): the program sees its \
                     owners and permissions as they are and what it writes belongs to its \
                     own user id (--uid 0 runs it as you)",
                    g.path.display()
                );
                out.views.push(view(g, "plain", Some(why)));
            }
        }
    }
    out._idmap = Some(idmap);
    Ok(out)
}

fn view(g: &Bind, mapping: &'static str, why_plain: Option<String>) -> GrantView {
    GrantView {
        path: g.path.clone(),
        writable: g.writable,
        mapping,
        why_plain,
    }
}
