//! What a seed makes happen: the workflows (each with the script its simulated worker
//! follows) and the list of steps (client calls, worker answers, faults, passing time).
//! The list is made whole from the seed before anything runs, so that a failing list can
//! be cut down step by step and replayed (`capstan-sim replay --seed S --keep ...`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// What a simulated workflow does: its worker decides its commands from its history and
/// this script alone, as workflow code would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Script {
    /// Runs `count` activities one after the other, each failing its first `fail_first`
    /// attempts; with `max_attempts` (0: unlimited) every attempt fails and the workflow
    /// fails with the last one.
    Activities {
        count: u8,
        fail_first: u8,
        max_attempts: u8,
        heartbeat: bool,
    },
    /// Sleeps `seconds`, then completes.
    Timer { seconds: u32 },
    /// Completes with the first `wanted` signals it received.
    Signals { wanted: u8 },
    /// Accepts even-numbered updates (answering twice the number), rejects odd ones, and
    /// completes once it accepted `wanted`.
    Updates { wanted: u8 },
    /// Starts a child that sleeps `child_seconds`, with this parent close policy (1
    /// terminate, 2 abandon, 3 request cancel), and completes once the child started.
    Child { policy: i32, child_seconds: u32 },
    /// Continues as new `remaining` more times, then completes.
    ContinueAsNew { remaining: u8 },
    /// A schedule (its id is the workflow's id) that starts a `Timer { seconds: 1 }`
    /// workflow every `every_seconds`, at most `actions` times, overlapping freely. `start`
    /// creates it, `cancel` pauses it, `terminate` deletes it; signals, updates and
    /// queries describe it.
    Schedule { every_seconds: u32, actions: u8 },
    /// Runs on the real Capstan worker (`real_worker::Errand`): an activity failing its
    /// first `fail_first` attempts, a sleep of `sleep_seconds`, then a wait for a signal.
    Errand { fail_first: u8, sleep_seconds: u32 },
}

impl Script {
    /// Where its workflow tasks go, and its workflow type.
    pub fn task_queue_and_type(self) -> (&'static str, &'static str) {
        match self {
            Script::Errand { .. } => (
                crate::real_worker::TASK_QUEUE,
                crate::real_worker::WORKFLOW_TYPE,
            ),
            _ => (crate::driver::TASK_QUEUE, crate::proto::WORKFLOW_TYPE),
        }
    }
}

/// How a simulated worker handles a task it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers as its script says.
    Normal,
    /// Takes the task and dies: never answers.
    Crash,
    /// Answers later (a `Late` step), perhaps after the task timed out.
    Late,
    /// Answers, then sends the same answer again.
    Twice,
    /// Fails a workflow task; fails an activity attempt.
    Fail,
    /// Workflow tasks: answers, asking for the next task on a sticky queue it then never
    /// polls. Activity tasks: heartbeats, then vanishes.
    Vanish,
}

/// One thing that happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A client starts workflow `w` (again, with the same request id, if it did before).
    Start(usize),
    /// A client signals workflow `w`, starting it if needed, with signal `k`.
    SignalWithStart(usize, u8),
    /// A client signals workflow `w` with signal `k` (the same request id for the same
    /// `k`: a retry).
    Signal(usize, u8),
    /// A client sends update `k` to workflow `w` and waits for its outcome in the
    /// background.
    Update(usize, u8),
    /// A client queries workflow `w` in the background.
    Query(usize),
    /// A client asks workflow `w` to cancel.
    Cancel(usize),
    /// A client terminates workflow `w`.
    Terminate(usize),
    /// The simulated worker takes a workflow task, if one is there.
    WorkflowTask(Behaviour),
    /// The simulated worker takes an activity task, if one is there.
    ActivityTask(Behaviour),
    /// The answers kept back by `Late` are sent now.
    Late,
    /// Time passes on the engine's clock (seconds); what is due fires at its instant.
    Advance(u64),
    /// The engine dies at a transaction boundary and opens its file again.
    Crash,
    /// Database writes start failing with this cause (or, with `None`, succeed again).
    FailWrites(Option<&'static str>),
    /// The client's connections are cut: calls in flight are lost.
    DropConnections,
    /// The engine's clock steps back (seconds), as a wall clock corrected by NTP does;
    /// the next `Advance` moves it on from the engine's time.
    ClockBack(u64),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Start(w) => write!(f, "start w{w}"),
            Step::SignalWithStart(w, k) => write!(f, "signal-with-start w{w} s{k}"),
            Step::Signal(w, k) => write!(f, "signal w{w} s{k}"),
            Step::Update(w, k) => write!(f, "update w{w} u{k}"),
            Step::Query(w) => write!(f, "query w{w}"),
            Step::Cancel(w) => write!(f, "cancel w{w}"),
            Step::Terminate(w) => write!(f, "terminate w{w}"),
            Step::WorkflowTask(b) => write!(f, "workflow task ({b:?})"),
            Step::ActivityTask(b) => write!(f, "activity task ({b:?})"),
            Step::Late => write!(f, "late answers"),
            Step::Advance(s) => write!(f, "advance {s} s"),
            Step::Crash => write!(f, "FAULT crash and reopen"),
            Step::FailWrites(Some(cause)) => write!(f, "FAULT writes fail: {cause}"),
            Step::FailWrites(None) => write!(f, "FAULT writes succeed again"),
            Step::DropConnections => write!(f, "FAULT connections dropped"),
            Step::ClockBack(s) => write!(f, "FAULT clock steps back {s} s"),
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;

    /// Reads a step as [`Display`](fmt::Display) writes it.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("not a step: `{text}`");
        let number = |s: &str, prefix: char| -> Result<u64, String> {
            s.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)
        };
        let behaviour = |s: &str| -> Result<Behaviour, String> {
            let name = s.trim().trim_start_matches('(').trim_end_matches(')');
            [
                Behaviour::Normal,
                Behaviour::Crash,
                Behaviour::Late,
                Behaviour::Twice,
                Behaviour::Fail,
                Behaviour::Vanish,
            ]
            .into_iter()
            .find(|b| format!("{b:?}") == name)
            .ok_or_else(bad)
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        Ok(match words.as_slice() {
            ["start", w] => Step::Start(number(w, 'w')? as usize),
            ["signal-with-start", w, k] => {
                Step::SignalWithStart(number(w, 'w')? as usize, number(k, 's')? as u8)
            }
            ["signal", w, k] => Step::Signal(number(w, 'w')? as usize, number(k, 's')? as u8),
            ["update", w, k] => Step::Update(number(w, 'w')? as usize, number(k, 'u')? as u8),
            ["query", w] => Step::Query(number(w, 'w')? as usize),
            ["cancel", w] => Step::Cancel(number(w, 'w')? as usize),
            ["terminate", w] => Step::Terminate(number(w, 'w')? as usize),
            ["workflow", "task", b] => Step::WorkflowTask(behaviour(b)?),
            ["activity", "task", b] => Step::ActivityTask(behaviour(b)?),
            ["late", "answers"] => Step::Late,
            ["advance", s, "s"] => Step::Advance(s.parse().map_err(|_| bad())?),
            ["FAULT", "crash", "and", "reopen"] => Step::Crash,
            ["FAULT", "connections", "dropped"] => Step::DropConnections,
            ["FAULT", "clock", "steps", "back", s, "s"] => {
                Step::ClockBack(s.parse().map_err(|_| bad())?)
            }
            ["FAULT", "writes", "succeed", "again"] => Step::FailWrites(None),
            ["FAULT", "writes", "fail:", ..] => {
                let cause = text.split_once("fail:").map_or("", |(_, c)| c.trim());
                Step::FailWrites(Some(
                    WRITE_FAILURES
                        .iter()
                        .copied()
                        .find(|c| *c == cause)
                        .ok_or_else(bad)?,
                ))
            }
            _ => return Err(bad()),
        })
    }
}

impl Step {
    /// The workflow a client call is aimed at.
    pub fn workflow(&self) -> Option<usize> {
        match *self {
            Step::Start(w)
            | Step::SignalWithStart(w, _)
            | Step::Signal(w, _)
            | Step::Update(w, _)
            | Step::Query(w)
            | Step::Cancel(w)
            | Step::Terminate(w) => Some(w),
            _ => None,
        }
    }

    /// Whether this step injects a fault.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Step::Crash | Step::FailWrites(Some(_)) | Step::DropConnections | Step::ClockBack(_)
        )
    }
}

/// The causes of failing writes the simulator injects.
pub const WRITE_FAILURES: &[&str] = &["disk I/O error (fsync failed)", "database or disk is full"];

/// A seed's workflows and steps.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub workflows: Vec<Script>,
    pub steps: Vec<Step>,
}

/// How much a seed does.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Workflows per seed, at most.
    pub workflows: u64,
    /// Steps per seed, at most.
    pub steps: u64,
    /// Whether some workflows are errands on a real Capstan worker (on by default;
    /// `--simulated-only` turns it off).
    pub real_worker: bool,
}

impl Default for Size {
    fn default() -> Self {
        Self {
            workflows: 8,
            steps: 160,
            real_worker: true,
        }
    }
}

impl Plan {
    /// The plan of `seed`.
    pub fn generate(seed: u64, size: Size) -> Self {
        let mut rng = Rng::new(seed);
        let count = rng.within(1..=size.workflows) as usize;
        let workflows: Vec<Script> = (0..count)
            .map(|_| script(&mut rng, size.real_worker))
            .collect();
        let steps_wanted = rng.within(size.steps / 4..=size.steps) as usize;
        // Faults come more or less often from one seed to the next.
        let fault_weight = rng.within(0..=4);
        let mut steps = Vec::with_capacity(steps_wanted);
        let mut failing = false;
        while steps.len() < steps_wanted {
            let w = rng.below(count as u64) as usize;
            let k = rng.below(6) as u8;
            let kind = rng.weighted(&[
                (6, 0u8),
                (3, 1),
                (20, 2),
                (12, 3),
                (4, 4),
                (5, 5),
                (3, 6),
                (2, 7),
                (4, 8),
                (2, 9),
                (8, 10),
                (fault_weight, 11),
                (fault_weight, 12),
                (fault_weight, 13),
                (fault_weight, 14),
            ]);
            let step =
                match kind {
                    0 => Step::Start(w),
                    1 if matches!(workflows[w], Script::Signals { .. } | Script::Errand { .. }) => {
                        Step::SignalWithStart(w, k)
                    }
                    1 | 4 => Step::Signal(w, k),
                    2 => Step::WorkflowTask(behaviour(&mut rng)),
                    3 => Step::ActivityTask(behaviour(&mut rng)),
                    5 => Step::Update(w, k),
                    6 => Step::Query(w),
                    7 => Step::Cancel(w),
                    8 => Step::Late,
                    9 => Step::Terminate(w),
                    10 => Step::Advance(advance(&mut rng)),
                    11 => Step::Crash,
                    12 => {
                        failing = !failing;
                        Step::FailWrites(failing.then(|| {
                            WRITE_FAILURES[rng.below(WRITE_FAILURES.len() as u64) as usize]
                        }))
                    }
                    13 => Step::DropConnections,
                    _ => Step::ClockBack(rng.weighted(&[(3, 1), (3, 30), (1, 3600)])),
                };
            // Terminations and cancels are rarer than the rest: most workflows should run
            // their course.
            if matches!(step, Step::Terminate(_) | Step::Cancel(_)) && rng.chance(50) {
                continue;
            }
            steps.push(step);
        }
        if failing {
            steps.push(Step::FailWrites(None));
        }
        Self {
            seed,
            workflows,
            steps,
        }
    }

    /// The plan as two lines, `workflows: <json>` and `steps: a; b; c`, as regression
    /// cases keep it (independent of how seeds make plans, which may change).
    pub fn to_text(&self) -> String {
        format!(
            "workflows: {}\nsteps: {}",
            serde_json::to_string(&self.workflows).expect("scripts serialize"),
            self.steps
                .iter()
                .map(Step::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    }

    /// A plan as [`Plan::to_text`] writes it.
    pub fn parse(seed: u64, text: &str) -> Result<Self, String> {
        let mut workflows = None;
        let mut steps = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(json) = line.strip_prefix("workflows:") {
                workflows =
                    Some(serde_json::from_str(json).map_err(|e| format!("workflows: {e}"))?);
            } else if let Some(list) = line.strip_prefix("steps:") {
                steps = list
                    .split(';')
                    .filter(|s| !s.trim().is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
            }
        }
        Ok(Self {
            seed,
            workflows: workflows.ok_or("no `workflows:` line")?,
            steps,
        })
    }

    /// The plan with only the steps whose indices `keep` holds.
    pub fn keeping(&self, keep: &[usize]) -> Self {
        Self {
            seed: self.seed,
            workflows: self.workflows.clone(),
            steps: keep
                .iter()
                .filter_map(|&i| self.steps.get(i).cloned())
                .collect(),
        }
    }
}

fn script(rng: &mut Rng, real_worker: bool) -> Script {
    match rng.below(if real_worker { 8 } else { 7 }) {
        0 => {
            let always_fails = rng.chance(20);
            Script::Activities {
                count: rng.within(1..=3) as u8,
                fail_first: if always_fails {
                    u8::MAX
                } else {
                    rng.within(0..=2) as u8
                },
                max_attempts: if always_fails {
                    rng.within(1..=3) as u8
                } else {
                    0
                },
                heartbeat: rng.chance(50),
            }
        }
        1 => Script::Timer {
            seconds: rng.weighted(&[(3, 1), (3, 60), (2, 3600), (1, 86_400 * 30)]),
        },
        2 => Script::Signals {
            wanted: rng.within(1..=3) as u8,
        },
        3 => Script::Updates {
            wanted: rng.within(1..=2) as u8,
        },
        4 => Script::Child {
            policy: rng.within(1..=3) as i32,
            child_seconds: rng.weighted(&[(1, 1), (1, 120), (1, 7200)]),
        },
        5 => Script::ContinueAsNew {
            remaining: rng.within(0..=3) as u8,
        },
        6 => Script::Schedule {
            every_seconds: rng.weighted(&[(2, 60), (2, 3600), (1, 86_400)]),
            actions: rng.within(1..=3) as u8,
        },
        _ => Script::Errand {
            fail_first: rng.within(0..=2) as u8,
            sleep_seconds: rng.weighted(&[(2, 1), (1, 90), (1, 86_400)]),
        },
    }
}

fn behaviour(rng: &mut Rng) -> Behaviour {
    rng.weighted(&[
        (12, Behaviour::Normal),
        (1, Behaviour::Crash),
        (1, Behaviour::Late),
        (1, Behaviour::Twice),
        (1, Behaviour::Fail),
        (1, Behaviour::Vanish),
    ])
}

/// Seconds to pass: mostly a moment, sometimes past a timeout, now and then a jump of
/// days.
fn advance(rng: &mut Rng) -> u64 {
    rng.weighted(&[(6, 1), (4, 5), (3, 11), (2, 61), (1, 3600), (1, 86_400 * 3)])
}
