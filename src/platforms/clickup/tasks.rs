//! Tasks of a list: reading them (open, closed and archived), creating them, and the
//! idempotent checklist ([`ClickUp::ensure_tasks`]) client onboarding relies on.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ClickUp, INFO, Ref, id_string, opt_millis};
use crate::platforms::error::PlatformError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    #[serde(default)]
    pub status: String,
    /// `open`, `custom`, `done` or `closed`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default)]
    pub description: Option<String>,
    /// Unix ms (ClickUp sends it as a string).
    #[serde(default, deserialize_with = "opt_millis")]
    pub due_date: Option<i64>,
    #[serde(default, deserialize_with = "opt_millis")]
    pub date_created: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub list: Option<Ref>,
    #[serde(default)]
    pub url: Option<String>,
    /// Archived tasks are kept by ClickUp but only listed with `archived=true`.
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Deserialize)]
struct TaskPage {
    tasks: Vec<Task>,
    #[serde(default)]
    last_page: Option<bool>,
}

/// A task to create (`POST /list/{id}/task`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewTask {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 1 urgent, 2 high, 3 normal, 4 low.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date_time: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<i64>,
}

/// One task of a checklist; JSON-friendly so checklists can be configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTemplate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Due this many days after the start date.
    #[serde(default)]
    pub due_in_days: Option<i64>,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What [`ClickUp::ensure_tasks`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnsuredTasks {
    /// One id per distinct template name, in template order (existing, archived or new).
    pub task_ids: Vec<String>,
    pub created: usize,
    /// Template tasks found only among the list's archived tasks: reused (their ids are in
    /// `task_ids`), never re-created, and left archived — someone archived them on purpose.
    pub archived: usize,
}

/// The agency's standard onboarding checklist for a new client.
pub fn default_onboarding_template() -> Vec<TaskTemplate> {
    let t = |name: &str, description: &str, days: i64, priority: u8, tags: &[&str]| TaskTemplate {
        name: name.into(),
        description: description.into(),
        due_in_days: Some(days),
        priority: Some(priority),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    vec![
        t(
            "Kick-off call",
            "Agree goals, KPIs (CPA/ROAS targets), budget and reporting cadence with the client.",
            1,
            2,
            &["onboarding"],
        ),
        t(
            "Collect brand assets",
            "Logos, fonts, brand guidelines, product photos and approved copy into the client's Drive folder.",
            3,
            3,
            &["onboarding", "creative"],
        ),
        t(
            "Get Meta ad account access",
            "Client adds the agency Business Manager as partner on the ad account, page and pixel.",
            3,
            2,
            &["onboarding", "meta"],
        ),
        t(
            "Get Google Ads account access",
            "Client accepts the manager-account (MCC) link request; confirm billing is set up.",
            3,
            2,
            &["onboarding", "google"],
        ),
        t(
            "Set up pixel and conversion tracking",
            "Meta pixel + Conversions API, Google Ads conversion tags / GA4 import; verify test events.",
            7,
            1,
            &["onboarding", "tracking"],
        ),
        t(
            "Campaign strategy",
            "Audiences, funnel structure, budget split per platform and test plan; client sign-off.",
            7,
            2,
            &["onboarding", "strategy"],
        ),
        t(
            "First creatives",
            "First round of ads (static + video) per platform, approved by the client.",
            10,
            3,
            &["onboarding", "creative"],
        ),
        t(
            "Launch campaigns",
            "Go live on Meta and Google; check delivery, spend pacing and tracking on day 1.",
            14,
            1,
            &["onboarding", "launch"],
        ),
        t(
            "Week-1 performance report",
            "First weekly report: spend, results, CPA/ROAS against targets and next steps.",
            21,
            3,
            &["onboarding", "report"],
        ),
    ]
}

impl ClickUp {
    /// Every task of the list (open and closed), archived ones excluded, following the
    /// 100-per-page paging.
    pub async fn list_tasks(&self, list_id: &str) -> Result<Vec<Task>, PlatformError> {
        self.tasks_where(list_id, false).await
    }

    /// The list's archived tasks (open and closed). ClickUp hides them from a plain listing.
    pub async fn archived_tasks(&self, list_id: &str) -> Result<Vec<Task>, PlatformError> {
        self.tasks_where(list_id, true).await
    }

    async fn tasks_where(&self, list_id: &str, archived: bool) -> Result<Vec<Task>, PlatformError> {
        // Far above any real list; stops a platform that never says `last_page`.
        const MAX_PAGES: u32 = 1000;
        let token = self.token()?;
        let url = self.url(&format!("list/{list_id}/task"));
        let archived = if archived { "true" } else { "false" };
        let mut tasks = Vec::new();
        for page in 0..MAX_PAGES {
            let page_str = page.to_string();
            let reply = self
                .http
                .send(Self::call("get_tasks"), |c| {
                    c.get(&url).header("Authorization", token).query(&[
                        ("page", page_str.as_str()),
                        ("archived", archived),
                        ("include_closed", "true"),
                        ("subtasks", "true"),
                    ])
                })
                .await?;
            let body: TaskPage = reply.json()?;
            let empty = body.tasks.is_empty();
            tasks.extend(body.tasks);
            // Should `last_page` be missing, an empty page ends the list.
            if empty || body.last_page.unwrap_or(false) {
                return Ok(tasks);
            }
        }
        Err(PlatformError::malformed(INFO.key, format!("list {list_id}: more than {MAX_PAGES} pages of tasks")))
    }

    pub async fn create_task(&self, list_id: &str, task: &NewTask) -> Result<Task, PlatformError> {
        let token = self.token()?;
        let url = self.url(&format!("list/{list_id}/task"));
        let reply = self
            .http
            .send(Self::call("create_task"), |c| c.post(&url).header("Authorization", token).json(task))
            .await?;
        reply.json()
    }

    /// Creates the template's tasks that the list lacks (matched by name), so running
    /// it again creates nothing. Archived tasks count as present: a task someone archived
    /// is reused as it is (reported in [`EnsuredTasks::archived`]), not re-created. Due
    /// dates are `start + due_in_days` (midnight UTC).
    pub async fn ensure_tasks(
        &self,
        list_id: &str,
        template: &[TaskTemplate],
        start: NaiveDate,
    ) -> Result<EnsuredTasks, PlatformError> {
        let named = |t: Task| (t.name.trim().to_string(), t.id);
        let mut known: Vec<(String, String)> = self.list_tasks(list_id).await?.into_iter().map(named).collect();
        // Only needed when the live tasks leave a template name unmatched.
        let mut archived: Option<Vec<(String, String)>> = None;
        let mut result = EnsuredTasks { task_ids: vec![], created: 0, archived: 0 };
        let mut seen: Vec<&str> = vec![];
        for item in template {
            let name = item.name.trim();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some((_, id)) = known.iter().find(|(n, _)| n == name) {
                result.task_ids.push(id.clone());
                continue;
            }
            if archived.is_none() {
                archived = Some(self.archived_tasks(list_id).await?.into_iter().map(named).collect());
            }
            if let Some((_, id)) = archived.iter().flatten().find(|(n, _)| n == name) {
                tracing::info!(list = list_id, task = %id, "onboarding task is archived in ClickUp; reused, not re-created");
                result.task_ids.push(id.clone());
                result.archived += 1;
                continue;
            }
            let task = self.create_task(list_id, &new_task(item, start)).await?;
            known.push((name.to_string(), task.id.clone()));
            result.task_ids.push(task.id);
            result.created += 1;
        }
        Ok(result)
    }
}

fn new_task(item: &TaskTemplate, start: NaiveDate) -> NewTask {
    let due_date = item
        .due_in_days
        .and_then(|days| start.checked_add_signed(chrono::Duration::days(days)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis());
    NewTask {
        name: item.name.trim().to_string(),
        description: (!item.description.is_empty()).then(|| item.description.clone()),
        priority: item.priority.filter(|p| (1..=4).contains(p)),
        due_date,
        due_date_time: due_date.map(|_| false),
        tags: item.tags.clone(),
        assignees: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tasks_with_string_dates_and_numeric_ids() {
        let page: TaskPage = serde_json::from_str(
            r#"{"tasks":[{"id":"9hx","name":"Kick-off call","status":{"status":"to do","type":"open"},
                "due_date":"1751328000000","date_created":"1567780450202","tags":[{"name":"onboarding"}],
                "list":{"id":901234567}},{"id":42,"name":"x","due_date":null}],"last_page":true}"#,
        )
        .unwrap();
        assert_eq!(page.tasks[0].due_date, Some(1_751_328_000_000));
        assert_eq!(page.tasks[0].list.as_ref().unwrap().id, "901234567");
        assert_eq!(page.tasks[1].id, "42");
        assert_eq!(page.tasks[1].due_date, None);
        assert!(serde_json::from_str::<TaskPage>(r#"{"tasks":[{"id":"1","name":"x","due_date":"soon"}]}"#).is_err());
    }

    #[test]
    fn due_dates_are_unix_ms_from_the_start_date() {
        let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let item = TaskTemplate {
            name: " Launch ".into(),
            description: String::new(),
            due_in_days: Some(30),
            priority: Some(9),
            tags: vec![],
        };
        let task = new_task(&item, start);
        assert_eq!(task.name, "Launch");
        assert_eq!(task.due_date, Some(1_782_864_000_000)); // 2026-07-01T00:00:00Z
        assert_eq!(task.priority, None, "priorities outside 1..=4 are dropped");
        assert_eq!(task.description, None);
    }

    #[test]
    fn onboarding_template_is_complete_and_unique() {
        let template = default_onboarding_template();
        assert!(template.len() >= 8);
        let mut names: Vec<_> = template.iter().map(|t| t.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), template.len());
        assert!(template.iter().all(|t| t.due_in_days.is_some() && t.priority.is_some_and(|p| (1..=4).contains(&p))));
    }
}
