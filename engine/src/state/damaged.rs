//! Runs whose stored rows were found damaged when the engine opened its file (a row that
//! fails its checksum or does not decode): set aside, not served. The engine serves every
//! other workflow; a request naming a damaged run, or starting its workflow id anew while
//! the damaged run is that id's latest, is answered `DATA_LOSS` saying what is damaged. The
//! damaged run's rows stay in the file as they are, for whoever wants to look at them.

use std::collections::HashMap;

use tonic::Status;

use crate::errors;

/// A run set aside.
#[derive(Debug, Clone)]
pub(crate) struct DamagedRun {
    pub(crate) run_id: String,
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    /// What is damaged, e.g. "event 3 fails its checksum".
    pub(crate) what: String,
}

impl DamagedRun {
    /// The answer to a request naming this run.
    pub(crate) fn status(&self) -> Status {
        errors::run_damaged(&self.workflow_id, &self.run_id, &self.what)
    }
}

/// The damaged runs of the file, by run id, and which workflow ids' latest run is one.
#[derive(Debug, Default)]
pub(crate) struct Damaged {
    runs: HashMap<String, DamagedRun>,
    latest: HashMap<(String, String), String>,
}

impl Damaged {
    /// Sets `run` aside; it is its workflow id's latest run until a later one is loaded
    /// ([`Damaged::superseded`]).
    pub(crate) fn insert(&mut self, run: DamagedRun) {
        self.latest.insert(
            (run.namespace.clone(), run.workflow_id.clone()),
            run.run_id.clone(),
        );
        self.runs.insert(run.run_id.clone(), run);
    }

    /// A healthy run of `key` started after the damaged ones.
    pub(crate) fn superseded(&mut self, key: &(String, String)) {
        self.latest.remove(key);
    }

    /// The damaged run `run_id`.
    pub(crate) fn run(&self, run_id: &str) -> Option<&DamagedRun> {
        self.runs.get(run_id)
    }

    /// The damaged run that is the latest of workflow `workflow_id`.
    pub(crate) fn latest(&self, namespace: &str, workflow_id: &str) -> Option<&DamagedRun> {
        let run_id = self
            .latest
            .get(&(namespace.to_owned(), workflow_id.to_owned()))?;
        self.runs.get(run_id)
    }
}
