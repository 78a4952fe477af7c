//! Jobs that run inside a container image (`image_id: docker:<image>`), as SkyPilot runs them:
//! the node keeps running its own system, and the task's `setup` and `run` execute in one
//! long-lived container started from the image on every node for the job, so what `setup`
//! installs is there for `run`.
//!
//! Why a container per job and node, started by the agent rather than at provisioning: the
//! agent is the one place that knows when a job starts and ends on every node, and it already
//! kills a job's processes on every node when the job is cancelled, fails or loses its head; a
//! container per job is removed by the same paths (see [`remove_script`]), so nothing a job
//! started outlives it, and a later job with another image simply gets its own container.
//!
//! The container shares the node's network (`--network host`), so the addresses in
//! `SKYPILOT_NODE_IPS` are the ones the job binds and connects to; the workdir and the file
//! mounts are bind-mounted at the paths the task expects; the job's variables (secrets too) are
//! passed by name only (`-e NAME`: the engine reads the value from its own environment, which
//! the transport exported from a script on stdin), so no value ever appears on a command line.
//! A private registry's password (`SKYPILOT_DOCKER_PASSWORD`) reaches `login` on its standard
//! input, never its arguments.
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

/// The file on a node that names the job's container and the engine that runs it (three lines:
/// engine kind, engine command, container name). Written before the container is started, so
/// a kill during the start still finds it.
pub fn container_file(run_dir: &str, job: i64) -> String {
    format!("{run_dir}/job-{job}.container")
}

/// The container's name for job `job` of `cluster` on the node of rank `rank`: unique on a
/// machine that several nodes (or agents) share, and made of the characters engines accept.
pub fn container_name(cluster: &str, job: i64, rank: u32) -> String {
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
    format!("aloft-{cluster}-job{job}-rank{rank}")
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

/// Reads the job's container file into `aloft_engine_kind`, `aloft_engine` and
/// `aloft_container`; `missing` runs when there is none.
fn read_container_file(file: &str, missing: &str) -> String {
    format!(
        "aloft_container_file={file}\n\
         if [ ! -f \"$aloft_container_file\" ]; then {missing}; fi\n\
         {{ read -r aloft_engine_kind; read -r aloft_engine; read -r aloft_container; }} < \"$aloft_container_file\"\n"
    )
}

/// The script that starts job `job`'s container on a node: picks (or installs) the engine,
/// logs in to a private registry when the job's variables say so, pulls the image unless the
/// node has it, and starts the container, which idles until [`exec_script`] runs the job's
/// commands in it and [`remove_script`] removes it.
pub fn start_script(container: &ContainerSpec, name: &str, run_dir: &str, job: i64) -> String {
    let mut mounts = String::new();
    for path in &container.mounts {
        let path = shell_quote(path);
        mounts.push_str(&format!(
            "{{ [ -e {path} ] || mkdir -p {path}; }} && aloft_args+=(-v {path}:{path})\n"
        ));
    }
    format!(
        "set -o pipefail\n\
         {DETECT_ENGINE}\
         mkdir -p {run_dir}\n\
         aloft_name={name}\n\
         aloft_image={image}\n\
         (umask 077; printf '%s\\n%s\\n%s\\n' \"$aloft_engine_kind\" \"$aloft_engine\" \"$aloft_name\" > {file})\n\
         if [ -n \"${{SKYPILOT_DOCKER_USERNAME:-}}\" ] && [ -n \"${{SKYPILOT_DOCKER_PASSWORD:-}}\" ]; then\n\
         \x20 echo \"aloft: logging in to ${{SKYPILOT_DOCKER_SERVER:-the default registry}} as $SKYPILOT_DOCKER_USERNAME\" >&2\n\
         \x20 printf '%s' \"$SKYPILOT_DOCKER_PASSWORD\" | $aloft_engine login --username \"$SKYPILOT_DOCKER_USERNAME\" \
         --password-stdin ${{SKYPILOT_DOCKER_SERVER:+\"$SKYPILOT_DOCKER_SERVER\"}} >&2 \\\n\
         \x20   || {{ echo \"aloft: logging in to the registry failed\" >&2; exit 125; }}\n\
         fi\n\
         if ! $aloft_engine image inspect \"$aloft_image\" >/dev/null 2>&1; then\n\
         \x20 echo \"aloft: pulling $aloft_image on $(hostname)\" >&2\n\
         \x20 $aloft_engine pull \"$aloft_image\" >&2 || {{ echo \"aloft: pulling $aloft_image failed\" >&2; exit 125; }}\n\
         fi\n\
         $aloft_engine rm -f \"$aloft_name\" >/dev/null 2>&1\n\
         aloft_args=(--network host)\n\
         if [ \"$aloft_engine_kind\" = podman ]; then aloft_args+=(--cgroups=disabled); fi\n\
         if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then\n\
         \x20 if [ \"$aloft_engine_kind\" = podman ]; then aloft_args+=(--device nvidia.com/gpu=all); else aloft_args+=(--gpus all); fi\n\
         fi\n\
         {mounts}\
         $aloft_engine run -d --name \"$aloft_name\" \"${{aloft_args[@]}}\" --entrypoint /bin/sh \"$aloft_image\" \
         -c 'trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done' >/dev/null \\\n\
         \x20 || {{ echo \"aloft: starting a container of $aloft_image failed\" >&2; exit 125; }}\n",
        name = shell_quote(name),
        image = shell_quote(&container.image),
        file = container_file(run_dir, job),
    )
}

/// The script that runs `script` in job `job`'s container, in `cwd` (if any), with the
/// variables `env_names` (their values come from the environment the script runs in). Its exit
/// status is the script's.
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
        "if command -v bash >/dev/null 2>&1; then exec bash -c \"$1\"; fi; exec sh -c \"$1\"",
    );
    format!(
        "{read}\
         exec $aloft_engine exec -i{args} \"$aloft_container\" /bin/sh -c {shell} aloft {script}",
        read = read_container_file(
            &container_file(run_dir, job),
            "echo \"aloft: the job's container is gone from $(hostname)\" >&2; exit 125"
        ),
        script = shell_quote(script),
    )
}

/// The script that removes job `job`'s container from a node (and everything running in it),
/// if it has one; run when the job ends, however it ends.
pub fn remove_script(run_dir: &str, job: i64) -> String {
    format!(
        "{read}\
         if [ \"$aloft_engine_kind\" = podman ]; then\n\
         \x20 $aloft_engine rm -f -t 0 \"$aloft_container\" >/dev/null 2>&1\n\
         else\n\
         \x20 $aloft_engine rm -f \"$aloft_container\" >/dev/null 2>&1\n\
         fi\n\
         rm -f \"$aloft_container_file\"\n",
        read = read_container_file(&container_file(run_dir, job), "exit 0"),
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
        assert_eq!(
            container_name("my-cluster", 3, 1),
            "aloft-my-cluster-job3-rank1"
        );
        assert_eq!(container_name("a b/c", 1, 0), "aloft-a-b-c-job1-rank0");
    }
}
