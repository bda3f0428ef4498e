//! What an alert of the monitoring is: how urgent, and where it is in its life
//! (`engine.alerts.severity` and `.status`).

super::names::text_enum! {
    /// How urgent an alert is (ordered: `info` < `warning` < `critical`).
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

super::names::text_enum! {
    /// Where an alert is in its life: `open` → `acknowledged` → `resolved` (or `open` → `resolved`).
    pub enum AlertStatus {
        Open = "open",
        Acknowledged = "acknowledged",
        Resolved = "resolved",
    }
}

super::names::text_enum! {
    /// What the monitoring found (`engine.alerts.kind`): the daily monitoring raises each kind
    /// (src/workflows/daily_monitoring.rs names them through this enum).
    pub enum AlertKind {
        Pacing = "pacing",
        CpaAboveTarget = "cpa_above_target",
        RoasBelowTarget = "roas_below_target",
        SpendAnomaly = "spend_anomaly",
        MaxDailySpend = "max_daily_spend",
        PlatformError = "platform_error",
    }
}
