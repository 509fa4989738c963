//! All runs by run id, and which ones the current transaction touched.

use std::{
    borrow::Borrow,
    collections::{HashMap, HashSet},
    hash::Hash,
};

use crate::run::{Run, RunImage};

/// The runs by run id, noting which ones a transaction touched: every run reached through
/// [`Runs::get_mut`], [`Runs::insert`] or [`Runs::remove`] is written at commit (when
/// durable), its deadlines are armed anew, and whoever waits on it is woken. Reads go
/// through [`Runs::get`], which touches nothing: a transition checks first, then takes
/// the run to change it.
///
/// A run's first touch keeps its image, so that a failed transaction can put every run it
/// touched back ([`Runs::roll_back`]).
#[derive(Default)]
pub(crate) struct Runs {
    map: HashMap<String, Run>,
    /// Touched run ids in first-touch order, and the same as a set.
    touched: Vec<String>,
    touched_set: HashSet<String>,
    /// The touched runs as they were (`None`: the transaction added it).
    images: Vec<(String, Option<RunImage>)>,
}

impl Runs {
    pub(crate) fn get<Q>(&self, run_id: &Q) -> Option<&Run>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(run_id)
    }

    /// Notes the first touch of `run_id` in this transaction, keeping its image.
    fn touch(&mut self, run_id: &str) {
        if self.touched_set.insert(run_id.to_owned()) {
            self.touched.push(run_id.to_owned());
            let image = self.map.get(run_id).map(Run::image);
            self.images.push((run_id.to_owned(), image));
        }
    }

    /// The run, noted as touched.
    pub(crate) fn get_mut(&mut self, run_id: &str) -> Option<&mut Run> {
        if !self.map.contains_key(run_id) {
            return None;
        }
        self.touch(run_id);
        self.map.get_mut(run_id)
    }

    pub(crate) fn insert(&mut self, run: Run) {
        self.touch(&run.run_id);
        self.map.insert(run.run_id.clone(), run);
    }

    /// Removes a run; a durable store deletes its rows at commit.
    pub(crate) fn remove(&mut self, run_id: &str) -> Option<Run> {
        if !self.map.contains_key(run_id) {
            return None;
        }
        self.touch(run_id);
        let image = self.images.iter_mut().find(|(id, _)| id == run_id);
        if let (Some(run), Some((_, Some(image)))) = (self.map.get(run_id), image) {
            image.keep_events(run);
        }
        self.map.remove(run_id)
    }

    /// Puts every run the transaction touched back as it was; answers their ids.
    pub(super) fn roll_back(&mut self) -> Vec<String> {
        for (run_id, image) in std::mem::take(&mut self.images).into_iter().rev() {
            let now = self.map.remove(&run_id);
            if let Some(image) = image {
                self.map.insert(run_id, image.restore(now));
            }
        }
        self.touched_set.clear();
        std::mem::take(&mut self.touched)
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

    /// The runs touched since the last call, in first-touch order; the transaction is
    /// kept (their images are let go).
    pub(super) fn take_touched(&mut self) -> Vec<String> {
        self.images.clear();
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
