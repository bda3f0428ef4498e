//! The one list of platforms, and the trait each platform implements.
//!
//! Everything that lists platforms is expanded from the [`registry!`] line at the end
//! of this file: [`REGISTRY`], the fields of [`PlatformSettings`] and [`Platforms`],
//! [`Platforms::http`] / [`Platforms::each`], and the simulator's vendors
//! ([`simulator`]). A platform missing a piece (settings, client, simulator routes,
//! throttling or fault answer, ...) does not implement [`Platform`] (or its simulator
//! state does not implement [`sim::Vendor`]), which is a compile error.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;

use super::{
    Mode, PlatformInfo, calls::CallCounter, clickup, google_ads, google_drive, http::PlatformHttp, llm, meta, whatsapp,
};
use crate::{
    domain::limits::LimitStore,
    limits::MemoryLimits,
    sim::{self, Behaviour, Mount, SimState},
};

/// One platform: its identity, its settings, its connector and its simulator.
pub trait Platform: Sized + Send + Sync + 'static {
    /// Key, title, settings prefix, simulator prefix.
    const INFO: PlatformInfo;
    /// Read from the variables prefixed `INFO.env_prefix`.
    type Settings: DeserializeOwned + Default + Clone + std::fmt::Debug + Send + Sync;
    /// The simulator's stand-in of this vendor (its routes, throttling and fault answers, what it created).
    type Sim: sim::Vendor + Default;

    /// The connector, counting its calls in `calls` and drawing its limits from `limits`.
    fn connect(settings: &Self::Settings, calls: &Arc<CallCounter>, limits: &Arc<dyn LimitStore>) -> Self;
    /// Its HTTP layer (limits, status).
    fn http(&self) -> &PlatformHttp;
    /// Settings a live connection lacks (names of the variables, never values).
    fn missing(settings: &Self::Settings) -> Vec<&'static str>;
    /// The same settings pointed at the simulator's `base` (its prefix included), with sandbox credentials.
    fn sandboxed(settings: &Self::Settings, base: &str) -> Self::Settings;

    /// The vendor API version these settings call, where the vendor versions its API.
    fn api_version(_settings: &Self::Settings) -> Option<String> {
        None
    }
    /// The end of that version, where the vendor publishes (or we estimate) one: Google's sunset
    /// date (requests fail from it), Meta's "available until".
    fn sunset_on(_settings: &Self::Settings) -> Option<NaiveDate> {
        None
    }
    /// Why a live platform with every setting present still cannot work on `today`
    /// (e.g. a sunset API version); empty when ready.
    fn not_ready(_settings: &Self::Settings, _today: NaiveDate) -> Vec<String> {
        vec![]
    }
    /// What will soon stop it working (e.g. its version sunsets within 60 days); never blocks.
    fn warnings(settings: &Self::Settings, today: NaiveDate) -> Vec<String> {
        sunset_warning(Self::INFO.title, Self::api_version(settings), Self::sunset_on(settings), today)
    }
}

/// Days before a sunset from which start-up and `GET /v1/platforms` warn.
pub const SUNSET_WARN_DAYS: i64 = 60;

/// "… sunsets on …" when `sunset` is within [`SUNSET_WARN_DAYS`] of `today` and not past.
pub fn sunset_warning(
    title: &str,
    version: Option<String>,
    sunset: Option<NaiveDate>,
    today: NaiveDate,
) -> Vec<String> {
    let (Some(version), Some(sunset)) = (version, sunset) else { return vec![] };
    let days = (sunset - today).num_days();
    if days > 0 && days <= SUNSET_WARN_DAYS {
        vec![format!("{title} API {version} sunsets on {sunset}, in {days} days; move to a newer version")]
    } else {
        vec![]
    }
}

/// The "available until" date Meta publishes for a Graph API version (Meta's changelog,
/// https://developers.facebook.com/docs/graph-api/changelog/versions, checked 2026-11-30;
/// v26.0 and later: "TBD"); Meta Ads and the WhatsApp Cloud API both call Graph. Reported
/// as is in `sunset_on`.
pub fn graph_sunset(version: &str) -> Option<NaiveDate> {
    let (y, m, d) = match version.trim_matches('/') {
        "v20.0" => (2026, 9, 24),
        "v21.0" => (2027, 1, 21),
        "v22.0" => (2027, 5, 20),
        "v23.0" => (2027, 10, 8),
        "v24.0" => (2028, 2, 18),
        "v25.0" => (2028, 7, 29),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(y, m, d)
}

fn load<T: DeserializeOwned>(prefix: &str, vars: &[(String, String)]) -> Result<T, String> {
    envy::prefixed(prefix).from_iter(vars.iter().cloned()).map_err(|e| match e {
        envy::Error::MissingValue(f) => format!("{prefix}{} is required", f.to_uppercase()),
        envy::Error::Custom(m) => format!("{prefix}*: {m}"),
    })
}

/// Expands the list `field: Type` into everything that lists platforms.
macro_rules! registry {
    ($($field:ident: $platform:ty),+ $(,)?) => {
        /// Every platform, in display order. Everything that lists platforms reads this.
        pub const REGISTRY: &[PlatformInfo] = &[$(<$platform as Platform>::INFO),+];

        /// Settings of every platform, each read from its own prefixed variables.
        #[derive(Debug, Clone, Default)]
        pub struct PlatformSettings {
            /// `PLATFORM_MODE`; when unset: live if any platform has credentials, else sandbox.
            pub mode: Option<Mode>,
            $(pub $field: <$platform as Platform>::Settings,)+
        }

        impl PlatformSettings {
            fn load(mode: Option<Mode>, vars: &[(String, String)]) -> Result<Self, String> {
                Ok(Self { mode, $($field: load(<$platform as Platform>::INFO.env_prefix, vars)?,)+ })
            }

            /// Credentials each platform lacks for live use (names of the variables, never values).
            pub fn missing(&self) -> Vec<(&'static str, Vec<&'static str>)> {
                vec![$((<$platform as Platform>::INFO.key, <$platform as Platform>::missing(&self.$field)),)+]
            }

            /// Each platform's API version, its sunset, why it is not ready and what to watch, on `today`.
            pub fn versions(&self, today: NaiveDate) -> Vec<(&'static str, Readiness)> {
                vec![$((<$platform as Platform>::INFO.key, Readiness {
                    api_version: <$platform as Platform>::api_version(&self.$field),
                    sunset_on: <$platform as Platform>::sunset_on(&self.$field),
                    not_ready: <$platform as Platform>::not_ready(&self.$field, today),
                    warnings: <$platform as Platform>::warnings(&self.$field, today),
                }),)+]
            }

            /// The same settings pointed at a simulator at `base`, with sandbox credentials.
            pub fn sandboxed(&self, base: &str) -> Self {
                Self {
                    mode: Some(Mode::Sandbox),
                    $($field: <$platform as Platform>::sandboxed(
                        &self.$field,
                        &format!("{base}{}", <$platform as Platform>::INFO.sim_prefix),
                    ),)+
                }
            }
        }

        /// One client per platform, built once at start-up.
        pub struct Platforms {
            pub mode: Mode,
            pub settings: PlatformSettings,
            /// Every client's calls, per client and day (written by `crate::costs`).
            pub calls: Arc<CallCounter>,
            $(pub $field: $platform,)+
        }

        impl Platforms {
            /// `settings` must already point where calls should go (see [`PlatformSettings::sandboxed`]);
            /// every call is counted in `calls`. The limits are this process's own: see [`Self::sharing`].
            pub fn new(mode: Mode, settings: PlatformSettings, calls: Arc<CallCounter>) -> Self {
                Self::sharing(mode, settings, calls, MemoryLimits::shared())
            }

            /// [`Self::new`] with every platform's limits and pauses drawn from `limits`, shared by
            /// every process using the same store (the database, `store::limits::PgLimits`).
            pub fn sharing(mode: Mode, settings: PlatformSettings, calls: Arc<CallCounter>, limits: Arc<dyn LimitStore>) -> Self {
                Self {
                    mode,
                    $($field: <$platform as Platform>::connect(&settings.$field, &calls, &limits),)+
                    settings,
                    calls,
                }
            }

            /// Every platform with its HTTP layer, in display order.
            pub fn each(&self) -> Vec<(&'static PlatformInfo, &PlatformHttp)> {
                REGISTRY.iter().zip([$(Platform::http(&self.$field)),+]).collect()
            }
        }

        /// The simulator serving every platform, each under its `sim_prefix`, starting with `behaviour`.
        pub fn simulator(behaviour: Behaviour) -> SimState {
            SimState::new(
                [$(Mount::new::<<$platform as Platform>::Sim>(
                    <$platform as Platform>::INFO.key,
                    <$platform as Platform>::INFO.sim_prefix,
                )),+],
                behaviour,
            )
        }
    };
}

/// A platform's version and readiness (see [`Platform::api_version`] and the methods after it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub api_version: Option<String>,
    pub sunset_on: Option<NaiveDate>,
    pub not_ready: Vec<String>,
    pub warnings: Vec<String>,
}

impl PlatformSettings {
    /// One platform's [`Readiness`] on `today`.
    pub fn readiness(&self, key: &str, today: NaiveDate) -> Readiness {
        self.versions(today).into_iter().find(|(k, _)| *k == key).map(|(_, r)| r).unwrap_or_default()
    }

    pub fn from_vars(vars: &[(String, String)]) -> Result<Self, String> {
        let mode = match vars.iter().find(|(k, _)| k == "PLATFORM_MODE").map(|(_, v)| v.trim().to_lowercase()) {
            None => None,
            Some(v) if v == "live" => Some(Mode::Live),
            Some(v) if v == "sandbox" => Some(Mode::Sandbox),
            Some(v) => return Err(format!("PLATFORM_MODE: `{v}` is not one of live, sandbox")),
        };
        Self::load(mode, vars)
    }
}

impl Platforms {
    /// The HTTP layer of a platform (limits, status), by registry key.
    pub fn http(&self, key: &str) -> Option<&PlatformHttp> {
        self.each().into_iter().find(|(info, _)| info.key == key).map(|(_, http)| http)
    }
}

// The platforms, in display order: adding one is one line here (see docs/PLATFORMS.md).
registry! {
    meta: meta::Meta,
    google_ads: google_ads::GoogleAds,
    google_drive: google_drive::GoogleDrive,
    clickup: clickup::ClickUp,
    whatsapp: whatsapp::WhatsApp,
    llm: llm::Llm,
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::platforms::calls::for_client;

    async fn sandbox() -> (sim::Running, PlatformSettings) {
        let running = sim::spawn("127.0.0.1:0".parse().unwrap(), simulator(Behaviour::default())).await.unwrap();
        let settings = PlatformSettings::default().sandboxed(&running.base_url);
        (running, settings)
    }

    #[test]
    fn every_platform_has_its_own_http_layer_and_simulator() {
        let platforms = Platforms::new(Mode::Sandbox, PlatformSettings::default(), Arc::default());
        let each = platforms.each();
        assert_eq!(each.len(), REGISTRY.len());
        for (info, http) in each {
            assert_eq!(http.platform(), info.key, "{} is served by another platform's client", info.key);
            assert!(platforms.http(info.key).is_some_and(|h| std::ptr::eq(h, http)));
        }
        assert!(platforms.http("myspace").is_none());
        let mut keys: Vec<&str> = REGISTRY.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        assert_eq!(simulator(Behaviour::default()).keys(), keys, "the simulator serves exactly the registry");
    }

    /// The call counter belongs to one `Platforms`: two apps in one process (tests under
    /// `cargo test`) calling for the same client at the same time each count only their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_platforms_counts_only_its_own_calls() {
        let (running, settings) = sandbox().await;
        // Free-form texts need the customer's 24 h window open: they just wrote in.
        running.state.vendor::<sim::whatsapp::State>().open_window("+5511988880000", Utc::now());
        let a = Arc::new(Platforms::new(Mode::Sandbox, settings.clone(), Arc::default()));
        let b = Arc::new(Platforms::new(Mode::Sandbox, settings, Arc::default()));
        let client = Uuid::new_v4();
        let send = |platforms: Arc<Platforms>, n: usize| {
            tokio::spawn(for_client(client, async move {
                for i in 0..n {
                    platforms.whatsapp.send_text("+5511988880000", &format!("call {i}")).await.unwrap();
                }
            }))
        };
        let (ra, rb) = tokio::join!(send(a.clone(), 3), send(b.clone(), 2));
        ra.unwrap();
        rb.unwrap();
        let today = Utc::now().date_naive();
        assert_eq!(a.calls.pending(client, "whatsapp", today), 3);
        assert_eq!(b.calls.pending(client, "whatsapp", today), 2);
    }
}
