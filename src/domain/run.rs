//! Where a workflow run and its tasks stand, and what started the run
//! (`engine.runs.status`, `.trigger` and `engine.tasks.status`).

super::names::text_enum! {
    /// A run: `queued` until a worker claims its first task, `running` until no task is
    /// open, then one of the four ends (`canceled` also straight from `queued`/`running`).
    pub enum RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        PartiallyFailed = "partially_failed",
        Failed = "failed",
        Canceled = "canceled",
    }
}

impl RunStatus {
    /// Not finished yet: a worker may still change it.
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

super::names::text_enum! {
    /// A task (one client of a run).
    pub enum TaskStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

super::names::text_enum! {
    /// What started a run.
    pub enum RunTrigger {
        Api = "api",
        Schedule = "schedule",
        Whatsapp = "whatsapp",
    }
}
