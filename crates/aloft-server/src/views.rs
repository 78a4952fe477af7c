//! The control plane's records converted by hand into the API's views, at the edge (store rows
//! never reach a client).

use aloft_control::background::TaskStatus;
use aloft_control::status::Live;

pub fn cluster(record: aloft_store::Cluster, live: Option<Live>) -> aloft_api::Cluster {
    use aloft_api::ClusterStatus as Api;
    use aloft_store::ClusterStatus as Stored;
    let ports = record
        .resources
        .get("ports")
        .and_then(serde_json::Value::as_array)
        .map(|ranges| {
            ranges
                .iter()
                .filter_map(|range| {
                    let first = range.get("first")?.as_u64()?;
                    let last = range.get("last")?.as_u64()?;
                    Some(if first == last {
                        first.to_string()
                    } else {
                        format!("{first}-{last}")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    aloft_api::Cluster {
        status: match record.status {
            Stored::Init => Api::Init,
            Stored::Up => Api::Up,
            Stored::Stopped => Api::Stopped,
            Stored::Degraded => Api::Degraded,
            Stored::Terminating => Api::Terminating,
        },
        name: record.name,
        cloud: record.cloud,
        region: record.region,
        zone: record.zone,
        instance_type: record.instance_type,
        num_nodes: record.num_nodes,
        spot: record.spot,
        hourly_price: record.hourly_price,
        autostop_minutes: record.autostop_minutes,
        autostop_down: record.autostop_down,
        ports,
        created_at: record.created_at,
        updated_at: record.updated_at,
        running_nodes: live.as_ref().map(|live| live.running as u32),
        live_state: live.map(|live| live.state),
    }
}

pub fn request(record: aloft_store::Request) -> aloft_api::Request {
    use aloft_api::RequestState as Api;
    use aloft_store::RequestState as Stored;
    aloft_api::Request {
        id: record.id,
        kind: record.kind,
        cluster: record.cluster,
        state: match record.state {
            Stored::Pending => Api::Pending,
            Stored::Running => Api::Running,
            Stored::Succeeded => Api::Succeeded,
            Stored::Failed => Api::Failed,
            Stored::Cancelled => Api::Cancelled,
        },
        created_at: record.created_at,
        finished_at: record.finished_at,
        result: record.result,
        error: record.error,
    }
}

pub fn event(record: aloft_store::RequestEvent) -> aloft_api::RequestEvent {
    aloft_api::RequestEvent {
        seq: record.seq,
        at: record.at,
        line: record.line,
    }
}

pub fn task(status: TaskStatus) -> aloft_api::BackgroundTask {
    aloft_api::BackgroundTask {
        name: status.name.to_owned(),
        description: status.description.to_owned(),
        period_seconds: status.period.as_secs(),
        activations: status.activations,
        last_started_at: status.last_started_at,
        last_finished_at: status.last_finished_at,
        last_status: status.last_status,
    }
}

pub fn job(job: aloft_store::Job) -> aloft_api::Job {
    aloft_api::Job {
        id: job.id,
        name: job.name,
        state: job_state(job.state),
        submitted_at: job.submitted_at,
        started_at: job.started_at,
        ended_at: job.ended_at,
        exit_codes: job.exit_codes,
    }
}

pub fn endpoint(endpoint: aloft_control::jobs::Endpoint) -> aloft_api::Endpoint {
    aloft_api::Endpoint {
        cluster: endpoint.cluster,
        port: endpoint.port,
        endpoint: endpoint.endpoint,
    }
}

pub fn job_state(state: aloft_store::JobState) -> aloft_api::JobState {
    use aloft_api::JobState as Api;
    use aloft_store::JobState as Stored;
    match state {
        Stored::Pending => Api::Pending,
        Stored::SettingUp => Api::SettingUp,
        Stored::Running => Api::Running,
        Stored::Succeeded => Api::Succeeded,
        Stored::Failed => Api::Failed,
        Stored::FailedSetup => Api::FailedSetup,
        Stored::Cancelled => Api::Cancelled,
    }
}

/// A piece of a job's log stream as the API streams it.
pub fn log_item(item: aloft_control::logs::LogItem<'_>, nodes: u32) -> aloft_api::LogEvent {
    match item {
        aloft_control::logs::LogItem::Job(job_id) => aloft_api::LogEvent::Job { job_id, nodes },
        aloft_control::logs::LogItem::Output(piece) => aloft_api::LogEvent::Output {
            rank: piece.rank,
            stream: match piece.stream {
                aloft_control::logs::OutStream::Stdout => aloft_api::OutStream::Stdout,
                aloft_control::logs::OutStream::Stderr => aloft_api::OutStream::Stderr,
            },
            text: String::from_utf8_lossy(piece.bytes).into_owned(),
        },
    }
}

/// The end of a job's log stream.
pub fn log_end(end: aloft_control::logs::LogsEnd) -> aloft_api::LogEvent {
    aloft_api::LogEvent::End {
        job_id: end.job_id,
        state: job_state(end.state),
        exit_codes: end.exit_codes,
    }
}

/// A launch body as the application takes it; an error names the field that is wrong.
pub fn task_launch(
    body: aloft_api::LaunchBody,
) -> Result<aloft_control::launch::TaskLaunch, String> {
    use aloft_control::launch::{Objective, PlanSpec, TaskLaunch};
    let plan = body.plan;
    TaskLaunch::from_parts(
        &body.cluster,
        body.task,
        body.secrets,
        &body.base_dir,
        PlanSpec {
            objective: match plan.objective {
                aloft_api::Objective::Cost => Objective::Cost,
                aloft_api::Objective::Time => Objective::Time,
                aloft_api::Objective::Carbon => Objective::Carbon,
            },
            max_hourly_price: plan.max_hourly_price,
            budget: plan.budget,
            max_carbon_g: plan.max_carbon_g,
            blocked: plan.blocked,
            default_runtime_hours: plan.default_runtime_hours,
            deadline_seconds: plan.deadline_seconds,
            catalog: plan.catalog,
            catalog_outliers: plan.catalog_outliers,
            carbon_intensity: plan.carbon_intensity,
            start_time: plan.start_time,
            slack: plan.slack.map(|slack| aloft_control::launch::Slack {
                measure: match slack.measure {
                    aloft_api::SlackMeasure::Carbon => aloft_control::launch::SlackMeasure::Carbon,
                    aloft_api::SlackMeasure::Cost => aloft_control::launch::SlackMeasure::Cost,
                },
                percent: slack.percent,
            }),
        },
        body.retry_until_up,
        body.idle_minutes,
        body.down,
        body.detach,
    )
}
