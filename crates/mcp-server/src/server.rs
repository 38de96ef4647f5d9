//! The MCP server: the rmcp handler (`tools/list`, `tools/call`, cancellations), what a call
//! carries (progress token, cancellation), and the lifecycle of `ao mcp serve` (serve stdio
//! until the client goes away, then stop the runs still going).

use crate::catalog::{ToolDef, catalog};
use crate::schema::argument_errors;
use ao_core::config::Config;
use ao_core::redact::Redactor;
use ao_orchestrator::{Jobs, Modes, Service};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams, ProgressToken,
    RequestId, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `ao mcp serve` is started with: the project, its effective configuration, and the
/// server's own options.
pub struct Setup {
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub config: Config,
    /// The real environment (the policy and the model layer read it under the configuration).
    pub env: BTreeMap<String, String>,
    pub redactor: Redactor,
    /// Serve only the tools whose `readOnlyHint` is true.
    pub read_only: bool,
    /// Callers may ask for writes (`apply: true`) even when the configuration alone does not
    /// allow them.
    pub allow_apply: bool,
}

/// Why the server stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The client closed the connection.
    Disconnected,
    /// SIGINT (130) or SIGTERM (143).
    Signal(u8),
}

/// What the handlers share: the project's services, the runs driven here, the calls in flight.
pub(crate) struct Backend {
    pub modes: Modes,
    pub jobs: Jobs,
    pub config: Config,
    pub env: BTreeMap<String, String>,
    pub redactor: Redactor,
    pub root: PathBuf,
    pub state_dir: PathBuf,
    /// Calls in flight, by request id: the run a call drives and, once the client cancelled
    /// the call, its reason.
    calls: Mutex<HashMap<RequestId, CallState>>,
}

#[derive(Default)]
struct CallState {
    cancel_reason: Option<String>,
}

/// One `tools/call` as a handler sees it.
pub(crate) struct Call {
    pub tool: String,
    pub id: RequestId,
    pub progress: Option<ProgressToken>,
    pub peer: Peer<RoleServer>,
    pub ct: CancellationToken,
}

/// A result the caller should read as a failure (`isError: true`): what went wrong and what
/// to do, in the terms of this server's tools and arguments.
#[derive(Debug)]
pub(crate) struct Failure(pub String);

pub struct AoServer {
    info: Implementation,
    tools: Vec<ToolDef>,
    read_only: bool,
    pub(crate) backend: Arc<Backend>,
}

impl AoServer {
    /// Opens the project's store and builds the dry-run (and, where allowed, apply) services.
    /// A configuration that makes no valid policy is an error here, not on every call.
    pub fn new(setup: Setup) -> Result<Self, ao_orchestrator::Error> {
        let base = Service::open(&setup.root, &setup.state_dir)?;
        let modes = Modes::configure(
            &base,
            &setup.config,
            &setup.env,
            setup.allow_apply,
            setup.redactor.clone(),
        )?;
        let info = Implementation::new(
            setup.config.mcp_server_name.value.clone(),
            setup.config.mcp_server_version.value.clone(),
        );
        let tools = catalog(modes.writes_allowed());
        Ok(AoServer {
            info,
            tools,
            read_only: setup.read_only,
            backend: Arc::new(Backend {
                modes,
                jobs: Jobs::new(),
                config: setup.config,
                env: setup.env,
                redactor: setup.redactor,
                root: setup.root,
                state_dir: setup.state_dir,
                calls: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The tools this server serves, in `tools/list` order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolDef> {
        self.tools
            .iter()
            .filter(move |d| !self.read_only || d.is_read_only())
    }

    /// Serves MCP on stdin/stdout until the client disconnects or a signal comes, then stops
    /// the runs this server still drives (they stay resumable).
    pub async fn serve_stdio(self) -> Result<Stopped, String> {
        let backend = self.backend.clone();
        // Listen for signals before serving, so one that comes early is not missed; a signal
        // wins over a session ending at the same moment.
        let signals = Signals::listen();
        let running = self
            .serve(rmcp::transport::stdio_pipes())
            .await
            .map_err(|e| format!("cannot start the MCP session: {e}"))?;
        let stopped = tokio::select! {
            biased;
            code = signals.next() => Stopped::Signal(code),
            quit = running.waiting() => {
                if let Err(e) = quit {
                    eprintln!("ao mcp serve: the session ended with an error: {e}");
                }
                Stopped::Disconnected
            }
        };
        let why = match &stopped {
            Stopped::Disconnected => "mcp client disconnected",
            Stopped::Signal(130) => "mcp server interrupted (SIGINT)",
            Stopped::Signal(_) => "mcp server terminated (SIGTERM)",
        };
        for run_id in backend.jobs.stop_all(why, Duration::from_secs(5)).await {
            eprintln!(
                "ao mcp serve: stopped run {run_id} ({why}); completed tasks are kept: continue it with `ao runs resume {run_id}`"
            );
        }
        Ok(stopped)
    }
}

/// SIGINT and SIGTERM, listened for from the moment it is made.
struct Signals {
    #[cfg(unix)]
    watched: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                watched: signal(SignalKind::interrupt())
                    .ok()
                    .zip(signal(SignalKind::terminate()).ok()),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for SIGINT (130) or SIGTERM (143); never returns if signals cannot be watched.
    async fn next(self) -> u8 {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.watched {
            return tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            };
        }
        std::future::pending().await
    }
}

/// What the server tells a client about itself (shown to the model by most clients).
const INSTRUCTIONS: &str = "ao runs agent workflows (explicit state graphs over a leader and worker models and policy-gated tools) in this project. \
Start work with ao_plan, ao_review_diff, ao_fix_error or ao_run_workflow (ao_list_workflows and ao_describe_workflow show what can run); \
each returns a run: wait for it with ao_wait_for_run, answer its questions with ao_resume_run (with a request_id), cancel it with ao_cancel_run. \
Runs are dry-runs unless the server allows writes: their file edits become a changeset (ao_get_changeset) to review and apply (ao_apply_changeset). \
Runs live in the project's state directory, shared with the `ao` command line.";

impl Backend {
    /// Notes a call in flight (until the guard is dropped).
    fn register_call(self: &Arc<Self>, id: &RequestId) -> CallGuard {
        self.lock_calls().insert(id.clone(), CallState::default());
        CallGuard {
            backend: self.clone(),
            id: id.clone(),
        }
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, CallState>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client cancelled a call (`notifications/cancelled`).
    fn note_cancel(&self, id: &RequestId, reason: Option<String>) {
        if let Some(state) = self.lock_calls().get_mut(id) {
            state.cancel_reason = Some(reason.unwrap_or_else(|| "no reason given".into()));
        }
    }

    /// Why the client cancelled this call, if it did. The request's token fires before the
    /// cancel notification is handled (and also when the server shuts down): a moment is
    /// given for the reason to arrive; none means shutdown.
    pub(crate) async fn cancel_reason(&self, id: &RequestId) -> Option<String> {
        for _ in 0..20 {
            if let Some(reason) = self
                .lock_calls()
                .get(id)
                .and_then(|s| s.cancel_reason.clone())
            {
                return Some(reason);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

struct CallGuard {
    backend: Arc<Backend>,
    id: RequestId,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.backend.lock_calls().remove(&self.id);
    }
}

/// `structuredContent` (always an object) and the same JSON as a text block.
fn object_result(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

impl AoServer {
    fn unknown_tool(&self, name: &str) -> String {
        let hidden = self.read_only && self.tools.iter().any(|d| d.name() == name);
        if hidden {
            return format!(
                "tool `{name}` is not served: this server runs read-only (--read-only or AO_MCP_READ_ONLY=true) and serves only tools that change nothing"
            );
        }
        let names: Vec<&str> = self.tools().map(ToolDef::name).collect();
        format!(
            "unknown tool `{name}`; this server's tools: {}",
            names.join(", ")
        )
    }
}

impl ServerHandler for AoServer {
    fn get_info(&self) -> ServerConfig {
        // The identity is set here: rmcp's default would report rmcp's own name and version.
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(self.info.clone())
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools().map(|d| d.tool.clone()).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools()
            .find(|d| d.name() == name)
            .map(|d| d.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(def) = self.tools().find(|d| d.name() == request.name) else {
            return Err(ErrorData::invalid_params(
                self.unknown_tool(&request.name),
                Some(serde_json::json!({"tool": request.name})),
            ));
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        let validator = def
            .validator()
            .map_err(|e| ErrorData::internal_error(e, None))?;
        if let Some(message) = argument_errors(def.name(), validator, &args) {
            return Ok(error_result(message).into());
        }
        let call = Call {
            tool: def.name().to_string(),
            id: context.id.clone(),
            progress: context.meta.get_progress_token(),
            peer: context.peer.clone(),
            ct: context.ct.clone(),
        };
        let _in_flight = self.backend.register_call(&call.id);
        let redactor = &self.backend.redactor;
        Ok(match self.dispatch(def.id, args, &call).await {
            Ok(mut value) => {
                // Defence in depth: what the store holds is redacted already.
                redactor.redact_value_in_place(&mut value);
                object_result(value)
            }
            Err(Failure(message)) => error_result(redactor.redact_str(&message)),
        }
        .into())
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        if let Some(id) = notification.request_id {
            self.backend.note_cancel(&id, notification.reason);
        }
    }
}
