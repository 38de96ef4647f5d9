//! The interview runner and scorer against a scripted model whose every reply takes 200 ms.
//! Run: `cargo bench -p ao-orchestrator --bench interview`. The full built-in suite with 3
//! trials is asked `ceil(cases × 3 / concurrency)` rounds deep; the wall time should be a small
//! multiple of that many 200 ms rounds. `score` is the judging alone (no model).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ao_core::timestamp::Timestamp;
use ao_orchestrator::interview::runner::{
    BoxFuture, CaseModel, CaseRequest, RunOptions, interview, run_trials,
};
use ao_orchestrator::interview::score::{InterviewOutcome, WorkerIdentity, score_interview};
use ao_orchestrator::interview::suite::Suite;
use ao_orchestrator::interview::trial::{HarnessError, ModelReply, TrialRecord};

fn main() {
    divan::main();
}

fn suite() -> Arc<Suite> {
    static SUITE: OnceLock<Arc<Suite>> = OnceLock::new();
    Arc::clone(SUITE.get_or_init(|| Arc::new(Suite::builtin().expect("built-in suite"))))
}

fn worker() -> WorkerIdentity {
    WorkerIdentity {
        worker_id: "bench:model".into(),
        provider: "openai-compatible".into(),
        model: "model".into(),
        base_url: Some("http://127.0.0.1:1/v1".into()),
    }
}

/// Answers every case with its reference reply after `delay`.
struct Slow {
    suite: Arc<Suite>,
    delay: Duration,
}

impl CaseModel for Slow {
    fn ask<'a>(
        &'a self,
        request: CaseRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, HarnessError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let text = self
                .suite
                .case(request.case_id)
                .and_then(|c| c.reference())
                .map(|v| v.to_string())
                .unwrap_or_default();
            Ok(ModelReply {
                text,
                latency_ms: self.delay.as_millis() as u64,
                tokens: Some(100),
            })
        })
    }
}

#[divan::bench(args = [8, 32], sample_count = 3, sample_size = 1)]
fn full_suite_3_trials_200ms_replies(bencher: divan::Bencher, concurrency: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let suite = suite();
    let model: Arc<dyn CaseModel> = Arc::new(Slow {
        suite: Arc::clone(&suite),
        delay: Duration::from_millis(200),
    });
    let options = RunOptions {
        concurrency,
        ..RunOptions::default()
    };
    bencher.bench_local(|| {
        let outcome = rt.block_on(interview(
            Arc::clone(&suite),
            Arc::clone(&model),
            &worker(),
            &options,
            Timestamp::from_unix_seconds(0),
        ));
        assert!(matches!(outcome, InterviewOutcome::Profiled(_)));
    });
}

#[divan::bench(sample_count = 20)]
fn score(bencher: divan::Bencher) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let suite = suite();
    let model: Arc<dyn CaseModel> = Arc::new(Slow {
        suite: Arc::clone(&suite),
        delay: Duration::ZERO,
    });
    let records: Vec<TrialRecord> = rt.block_on(run_trials(
        Arc::clone(&suite),
        model,
        &RunOptions::default(),
        &[],
        |_| {},
    ));
    bencher.bench_local(|| {
        score_interview(&suite, &worker(), &records, Timestamp::from_unix_seconds(0))
    });
}
