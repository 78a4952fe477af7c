//! Jobs that run inside a container image (`image_id: docker:<image>`), as SkyPilot runs them:
//! the node keeps running its own system, and every job of a cluster launched with an image
//! runs its `setup` and `run` in one container of that image per node, kept for the cluster's
//! life, so what one job installs there is there for the next (`aloft exec` of a task that
//! names no image included).
//!
//! The container (`aloft-<cluster>-node<rank>`) is started by the agent when the first job
//! that needs it starts ([`ensure_script`]), not at provisioning: the agent is the one place
//! that knows when a job starts on every node, and a failure to pull or start is then the
//! job's setup failure, with its log. It is kept between jobs; after the node restarted
//! (`aloft stop`/`start`) the engine still has it, stopped, and it is started again with its
//! file system as it was (as SkyPilot `docker start`s its exited container); one that is gone
//! is made anew from the image. It goes away with the node when the cluster is torn down.
//!
//! A job's commands run in the container through the engine's `exec` ([`exec_script`]), in a
//! process group of their own inside it (bash's job control, else `setsid`), whose id is kept
//! in the container for [`kill_script`]: ending the `exec` client on the node does not end
//! what it started in the container, so every path that ends a job on a node (cancel, a rank
//! that failed, the head lost) also ends the job's group in the container, and a job that
//! ends by itself takes what it left running with it, as on the node.
//!
//! The container shares the node's network (`--network host`), so the addresses in
//! `SKYPILOT_NODE_IPS` are the ones the job binds and connects to; the workdir and the file
//! mounts are bind-mounted at the paths the task expects (a file mount a later job adds is
//! copied in when that job starts: a running container takes no new mounts); the job's
//! variables (secrets too) are passed by name only (`-e NAME`: the engine reads the value from
//! its own environment, which the transport exported from a script on stdin), so no value ever
//! appears on a command line. A private registry's password (`SKYPILOT_DOCKER_PASSWORD`)
//! reaches `login` on its standard input, never its arguments.
//!
//! The engine is Docker where its daemon answers, else a rootful Podman, else Docker is
//! installed with the node's package manager (cloud images without an engine); the
//! `ALOFT_CONTAINER_ENGINE` variable on the node (or [`crate::runner::GangJob::container_engine`])
//! names another command that speaks Docker's CLI. With Podman the container stays in the
//! node's own cgroup (`--cgroups=disabled`): the local cloud's instance sizes are cgroups the
//! instance already lives in, and its hosts mix cgroup v1 and v2, which Podman's own cgroup
//! setup refuses. GPUs are passed in (`--gpus all` for Docker, the CDI device
//! `nvidia.com/gpu=all` for Podman) when the node has `nvidia-smi`.

use crate::protocol::ContainerSpec;
use aloft_exec::shell_quote;

/// The prefix that makes an `image_id` a container image rather than a machine image.
pub const DOCKER_PREFIX: &str = "docker:";

/// The container image an `image_id` names (`docker:<image>`), without its prefix; `None` for
/// a machine image.
pub fn container_image(image_id: &str) -> Option<&str> {
    image_id
        .strip_prefix(DOCKER_PREFIX)
        .map(str::trim)
        .filter(|image| !image.is_empty())
}

/// The file on a node that names the cluster's container there (four lines: engine kind,
/// engine command, container name, image); written before the container is started, so a
/// kill during the start still finds it. Beside it, `container.mounts` lists the paths the
/// container was made with, one a line.
pub fn container_file(run_dir: &str) -> String {
    format!("{run_dir}/container")
}

/// The container of `cluster` on the node of rank `rank`: unique on a machine that several
/// nodes (or agents) share, and made of the characters engines accept.
pub fn container_name(cluster: &str, rank: u32) -> String {
    let cluster: String = cluster
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-') {
                character
            } else {
                '-'
            }
        })
        .collect();
    format!("aloft-{cluster}-node{rank}")
}

/// Where, inside the container, job `job` keeps the id of its process group while it runs
/// (emptied when it ends). The container's name is part of it, so containers that share a
/// file system (a test's fake engine) never mix their jobs up.
fn job_pid_file(job: i64) -> String {
    format!("/tmp/.aloft-job-{job}-$aloft_container.pid")
}

/// Shell that sets `aloft_engine_kind` (docker or podman) and `aloft_engine` (the command, as
/// words) on a node, installing Docker where no engine exists.
const DETECT_ENGINE: &str = r#"aloft_sudo=
if [ "$(id -u)" != 0 ]; then aloft_sudo="sudo -n"; fi
if [ -n "${ALOFT_CONTAINER_ENGINE:-}" ]; then
  aloft_engine="$ALOFT_CONTAINER_ENGINE"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  aloft_engine=docker
elif [ -n "$aloft_sudo" ] && command -v docker >/dev/null 2>&1 && $aloft_sudo docker info >/dev/null 2>&1; then
  aloft_engine="$aloft_sudo docker"
elif command -v podman >/dev/null 2>&1; then
  aloft_engine="${aloft_sudo:+$aloft_sudo }podman"
elif command -v apt-get >/dev/null 2>&1; then
  echo "aloft: no container engine on $(hostname); installing Docker" >&2
  $aloft_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    && $aloft_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2 \
    && { $aloft_sudo systemctl start docker >&2 2>/dev/null || $aloft_sudo service docker start >&2; } \
    || { echo "aloft: installing Docker on $(hostname) failed" >&2; exit 125; }
  aloft_engine="${aloft_sudo:+$aloft_sudo }docker"
else
  echo "aloft: no container engine (docker or podman) on $(hostname), and no apt-get to install one" >&2
  exit 125
fi
case "$($aloft_engine --version 2>/dev/null)" in
  *[Pp]odman*) aloft_engine_kind=podman ;;
  *) aloft_engine_kind=docker ;;
esac
"#;

/// Reads the node's container file into `aloft_engine_kind`, `aloft_engine`,
/// `aloft_container` and `aloft_container_image`; `missing` runs when there is none.
fn read_container_file(file: &str, missing: &str) -> String {
    format!(
        "aloft_container_file={file}\n\
         if [ ! -f \"$aloft_container_file\" ]; then {missing}; fi\n\
         {{ read -r aloft_engine_kind; read -r aloft_engine; read -r aloft_container; \
         read -r aloft_container_image; }} < \"$aloft_container_file\"\n"
    )
}

/// The script that makes sure the cluster's container runs on a node before a job's commands
/// run in it: kept from an earlier job when it runs; started again when the engine has it
/// stopped (the node restarted: its file system is as the last job left it); otherwise made
/// from the image: the engine picked (or installed), a private registry logged in to when the
/// job's variables say so, the image pulled unless the node has it. The container idles until
/// [`exec_script`] runs commands in it. Paths of `container.mounts` it was made without are
/// copied in.
pub fn ensure_script(container: &ContainerSpec, name: &str, run_dir: &str) -> String {
    let mut mounts = String::new();
    let mut copies = String::new();
    for path in &container.mounts {
        let relative = shell_quote(path.trim_start_matches('/'));
        let path = shell_quote(path);
        mounts.push_str(&format!(
            "\x20 {{ [ -e {path} ] || mkdir -p {path}; }} && aloft_args+=(-v {path}:{path}) \
             && printf '%s\\n' {path} >> \"$aloft_mounts\"\n"
        ));
        copies.push_str(&format!(
            "if [ -e {path} ] && ! grep -qxF -- {path} \"$aloft_mounts\" 2>/dev/null; then\n\
             \x20 echo \"aloft: copying {path} into the container on $(hostname) (it was started without it)\" >&2\n\
             \x20 tar -C / -cf - {relative} | $aloft_engine cp - \"$aloft_name:/\" >&2 \\\n\
             \x20   || {{ echo \"aloft: copying {path} into the container failed\" >&2; exit 125; }}\n\
             fi\n"
        ));
    }
    format!(
        "set -o pipefail\n\
         {DETECT_ENGINE}\
         mkdir -p {run_dir}\n\
         aloft_name={name}\n\
         aloft_image={image}\n\
         aloft_file={file}\n\
         aloft_mounts={file}.mounts\n\
         aloft_had=\n\
         if [ -f \"$aloft_file\" ]; then aloft_had=$(sed -n 4p \"$aloft_file\"); fi\n\
         aloft_running=$($aloft_engine container inspect -f '{{{{.State.Running}}}}' \"$aloft_name\" 2>/dev/null)\n\
         if [ -n \"$aloft_running\" ] && [ -n \"$aloft_had\" ] && [ \"$aloft_had\" != \"$aloft_image\" ]; then\n\
         \x20 echo \"aloft: the cluster's container on $(hostname) runs $aloft_had, not $aloft_image\" >&2\n\
         \x20 exit 125\n\
         fi\n\
         (umask 077; printf '%s\\n%s\\n%s\\n%s\\n' \"$aloft_engine_kind\" \"$aloft_engine\" \"$aloft_name\" \"$aloft_image\" > \"$aloft_file\")\n\
         if [ \"$aloft_running\" = false ]; then\n\
         \x20 echo \"aloft: starting the cluster's container again on $(hostname)\" >&2\n\
         \x20 if ! $aloft_engine start \"$aloft_name\" >/dev/null; then\n\
         \x20   echo \"aloft: it would not start; making it anew from $aloft_image\" >&2\n\
         \x20   aloft_running=\n\
         \x20 fi\n\
         fi\n\
         if [ -z \"$aloft_running\" ]; then\n\
         \x20 if [ -n \"${{SKYPILOT_DOCKER_USERNAME:-}}\" ] && [ -n \"${{SKYPILOT_DOCKER_PASSWORD:-}}\" ]; then\n\
         \x20   echo \"aloft: logging in to ${{SKYPILOT_DOCKER_SERVER:-the default registry}} as $SKYPILOT_DOCKER_USERNAME\" >&2\n\
         \x20   printf '%s' \"$SKYPILOT_DOCKER_PASSWORD\" | $aloft_engine login --username \"$SKYPILOT_DOCKER_USERNAME\" \
         --password-stdin ${{SKYPILOT_DOCKER_SERVER:+\"$SKYPILOT_DOCKER_SERVER\"}} >&2 \\\n\
         \x20     || {{ echo \"aloft: logging in to the registry failed\" >&2; exit 125; }}\n\
         \x20 fi\n\
         \x20 if ! $aloft_engine image inspect \"$aloft_image\" >/dev/null 2>&1; then\n\
         \x20   echo \"aloft: pulling $aloft_image on $(hostname)\" >&2\n\
         \x20   $aloft_engine pull \"$aloft_image\" >&2 || {{ echo \"aloft: pulling $aloft_image failed\" >&2; exit 125; }}\n\
         \x20 fi\n\
         \x20 $aloft_engine rm -f \"$aloft_name\" >/dev/null 2>&1\n\
         \x20 (umask 077; : > \"$aloft_mounts\")\n\
         \x20 aloft_args=(--network host)\n\
         \x20 if [ \"$aloft_engine_kind\" = podman ]; then aloft_args+=(--cgroups=disabled); fi\n\
         \x20 if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then\n\
         \x20   if [ \"$aloft_engine_kind\" = podman ]; then aloft_args+=(--device nvidia.com/gpu=all); else aloft_args+=(--gpus all); fi\n\
         \x20 fi\n\
         {mounts}\
         \x20 $aloft_engine run -d --name \"$aloft_name\" \"${{aloft_args[@]}}\" --entrypoint /bin/sh \"$aloft_image\" \
         -c 'trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done' >/dev/null \\\n\
         \x20   || {{ echo \"aloft: starting a container of $aloft_image failed\" >&2; exit 125; }}\n\
         fi\n\
         {copies}",
        name = shell_quote(name),
        image = shell_quote(&container.image),
        file = container_file(run_dir),
    )
}

/// What runs a job's script in the container (`$1`: the script, `$2`: the pid file), under
/// the image's bash if it has one, else its `sh`: the script in a process group of its own
/// (bash's job control; `setsid` without bash; neither: only the script's own process can be
/// ended), the group's id in the pid file while it runs, and whatever the script left running
/// in its group ended when it exits, as the node's session is.
const IN_CONTAINER: &str = r#"if [ -n "${BASH_VERSION:-}" ]; then
  exec 3>&2 2>/dev/null
  set -m
  bash -c "$1" 2>&3 3>&- &
elif command -v setsid >/dev/null 2>&1; then
  setsid sh -c "$1" &
else
  sh -c "$1" &
fi
aloft_group=$!
echo "$aloft_group" > "$2"
wait "$aloft_group"
aloft_status=$?
kill -TERM -"$aloft_group" 2>/dev/null
: > "$2"
exit "$aloft_status""#;

/// The script that runs `script` (job `job`'s setup or run) in the node's container, in `cwd`
/// (if any), with the variables `env_names` (their values come from the environment the
/// script runs in). Its exit status is the script's.
pub fn exec_script(
    script: &str,
    cwd: Option<&str>,
    env_names: &[&str],
    run_dir: &str,
    job: i64,
) -> String {
    let mut args = String::new();
    for name in env_names {
        args.push_str(&format!(" -e {}", shell_quote(name)));
    }
    if let Some(cwd) = cwd {
        args.push_str(&format!(" -w {}", shell_quote(cwd)));
    }
    // bash where the image has it (task scripts are written for it), else its sh.
    let shell = shell_quote(
        "if command -v bash >/dev/null 2>&1; then exec bash -c \"$1\" aloft \"$2\" \"$3\"; fi; \
         exec sh -c \"$1\" aloft \"$2\" \"$3\"",
    );
    format!(
        "{read}\
         exec $aloft_engine exec -i{args} \"$aloft_container\" /bin/sh -c {shell} aloft {wrapper} {script} \
         \"{pid}\"",
        read = read_container_file(
            &container_file(run_dir),
            "echo \"aloft: the cluster's container is gone from $(hostname)\" >&2; exit 125"
        ),
        wrapper = shell_quote(IN_CONTAINER),
        script = shell_quote(script),
        pid = job_pid_file(job),
    )
}

/// The script that ends what job `job` runs in the node's container (TERM to its process
/// group, KILL to what is left after a few seconds), if the node has a container and the job
/// runs there; the container itself stays. Part of every path that ends a job on a node.
pub fn kill_script(run_dir: &str, job: i64) -> String {
    let inside = shell_quote(
        "aloft_group=; read -r aloft_group < \"$1\" 2>/dev/null\n\
         [ -n \"$aloft_group\" ] || exit 0\n\
         kill -TERM -\"$aloft_group\" 2>/dev/null || kill -TERM \"$aloft_group\" 2>/dev/null || exit 0\n\
         aloft_tries=0\n\
         while [ $aloft_tries -lt 50 ]; do\n\
         \x20 kill -0 -\"$aloft_group\" 2>/dev/null || kill -0 \"$aloft_group\" 2>/dev/null || exit 0\n\
         \x20 sleep 0.1 2>/dev/null || break\n\
         \x20 aloft_tries=$((aloft_tries + 1))\n\
         done\n\
         kill -KILL -\"$aloft_group\" 2>/dev/null; kill -KILL \"$aloft_group\" 2>/dev/null; exit 0",
    );
    format!(
        "{read}\
         $aloft_engine exec \"$aloft_container\" /bin/sh -c {inside} aloft \"{pid}\" >/dev/null 2>&1\n\
         exit 0\n",
        read = read_container_file(&container_file(run_dir), "exit 0"),
        pid = job_pid_file(job),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_docker_prefix_names_a_container_image() {
        assert_eq!(
            container_image("docker:nvcr.io/nvidia/pytorch:24.01-py3"),
            Some("nvcr.io/nvidia/pytorch:24.01-py3")
        );
        assert_eq!(container_image("ami-0123456789abcdef0"), None);
        assert_eq!(container_image("docker:"), None);
    }

    #[test]
    fn container_names_keep_only_what_engines_accept() {
        assert_eq!(container_name("my-cluster", 1), "aloft-my-cluster-node1");
        assert_eq!(container_name("a b/c", 0), "aloft-a-b-c-node0");
    }
}
