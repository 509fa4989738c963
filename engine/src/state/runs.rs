//! All runs by run id, and which ones the current transaction touched.

use std::{
    borrow::Borrow,
    collections::{HashMap, HashSet},
    hash::Hash,
};

use crate::run::Run;

/// The runs by run id, noting which ones a transaction touched: every run reached through
/// [`Runs::get_mut`], [`Runs::insert`] or [`Runs::remove`] is written at commit (when
/// durable), its deadlines are armed anew, and whoever waits on it is woken. Reads go
/// through [`Runs::get`], which touches nothing: a transition checks first, then takes
/// the run to change it.
#[derive(Default)]
pub(crate) struct Runs {
    map: HashMap<String, Run>,
    /// Touched run ids in first-touch order, and the same as a set.
    touched: Vec<String>,
    touched_set: HashSet<String>,
}

impl Runs {
    pub(crate) fn get<Q>(&self, run_id: &Q) -> Option<&Run>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(run_id)
    }

    /// The run, noted as touched.
    pub(crate) fn get_mut(&mut self, run_id: &str) -> Option<&mut Run> {
        let run = self.map.get_mut(run_id)?;
        if self.touched_set.insert(run_id.to_owned()) {
            self.touched.push(run_id.to_owned());
        }
        Some(run)
    }

    pub(crate) fn insert(&mut self, run: Run) {
        if self.touched_set.insert(run.run_id.clone()) {
            self.touched.push(run.run_id.clone());
        }
        self.map.insert(run.run_id.clone(), run);
    }

    /// Removes a run; a durable store deletes its rows at commit.
    pub(crate) fn remove(&mut self, run_id: &str) -> Option<Run> {
        let run = self.map.remove(run_id)?;
        if self.touched_set.insert(run_id.to_owned()) {
            self.touched.push(run_id.to_owned());
        }
        Some(run)
    }

    /// Adds a run read from the database (not touched).
    pub(crate) fn load(&mut self, run: Run) {
        self.map.insert(run.run_id.clone(), run);
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Run> {
        self.map.values()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// The runs touched so far, in first-touch order.
    pub(super) fn touched(&self) -> &[String] {
        &self.touched
    }

    /// The runs touched since the last call, in first-touch order.
    pub(super) fn take_touched(&mut self) -> Vec<String> {
        self.touched_set.clear();
        std::mem::take(&mut self.touched)
    }
}

impl<Q> std::ops::Index<&Q> for Runs
where
    String: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = Run;

    fn index(&self, run_id: &Q) -> &Run {
        &self.map[run_id]
    }
}
