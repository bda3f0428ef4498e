//! API token scopes. `admin` grants every other scope.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "clients:read")]
    ClientsRead,
    #[serde(rename = "clients:write")]
    ClientsWrite,
    #[serde(rename = "platforms:act")]
    PlatformsAct,
    #[serde(rename = "workflows:read")]
    WorkflowsRead,
    #[serde(rename = "workflows:run")]
    WorkflowsRun,
    #[serde(rename = "schedules:write")]
    SchedulesWrite,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "tokens:admin")]
    TokensAdmin,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::ClientsRead,
        Scope::ClientsWrite,
        Scope::PlatformsAct,
        Scope::WorkflowsRead,
        Scope::WorkflowsRun,
        Scope::SchedulesWrite,
        Scope::WebhooksWrite,
        Scope::TokensAdmin,
        Scope::AuditRead,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ClientsRead => "clients:read",
            Scope::ClientsWrite => "clients:write",
            Scope::PlatformsAct => "platforms:act",
            Scope::WorkflowsRead => "workflows:read",
            Scope::WorkflowsRun => "workflows:run",
            Scope::SchedulesWrite => "schedules:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::TokensAdmin => "tokens:admin",
            Scope::AuditRead => "audit:read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a token holding `granted` may act with `self`.
    pub fn granted_by(self, granted: &[Scope]) -> bool {
        granted.iter().any(|g| *g == self || *g == Scope::Admin)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown scope `{s}` (known: {})", known.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_grants_everything_and_others_only_themselves() {
        assert!(Scope::AuditRead.granted_by(&[Scope::Admin]));
        assert!(Scope::ClientsRead.granted_by(&[Scope::ClientsRead]));
        assert!(!Scope::ClientsRead.granted_by(&[Scope::ClientsWrite]));
    }

    #[test]
    fn parses_every_name_and_rejects_others() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("clients:delete".parse::<Scope>().unwrap_err().contains("unknown scope"));
    }
}
