//! Crowd answers: who gave which label to which task. This module owns the two text
//! formats (`worker\ttask\tlabel` answers and `task\tlabel` gold, each with its header
//! line) and [`CrowdData`], the compact indexed form that the agreement statistics
//! (`agreement.rs`), the aggregators (`aggregate.rs`) and reviewer scoring (`quality.rs`)
//! all work on.
//!
//! It parses text handed to it and never reads a file: the caller does the IO. Errors name
//! the 1-based line at fault.
//!
//! Invariant: a `CrowdData` holds at least one answer and at most one answer per
//! (worker, task).
//!
//! Invariant: the dataset is canonical — workers are in string order, tasks and labels in
//! "label order" (numeric when every name is an integer, string order otherwise), answers
//! sorted by (task, worker). Two inputs with the same rows in a different order build
//! equal datasets, so nothing computed from a `CrowdData` depends on row order, and "the
//! smallest label" is a well-defined tie-break.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;

/// The header line of an answers file.
pub const ANSWERS_HEADER: [&str; 3] = ["worker", "task", "label"];
/// The header line of a gold file.
pub const GOLD_HEADER: [&str; 2] = ["task", "label"];

/// Why a crowd file could not be read. Line numbers are 1-based and count the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the file is empty: expected the header line `{expected}`")]
    Empty { expected: String },
    #[error("line 1: expected the header `{expected}`, found `{found}`")]
    Header { expected: String, found: String },
    #[error("no rows after the header line")]
    NoRows,
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Why answers do not make a [`CrowdData`]. Positions are 0-based indices into the
/// answers as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrowdDataError {
    #[error("there are no answers")]
    Empty,
    #[error("worker {worker:?} answered task {task:?} twice (answers {first} and {second})")]
    DuplicateAnswer {
        worker: String,
        task: String,
        first: usize,
        second: usize,
    },
}

/// Splits `text` into its data rows of exactly `N` tab-separated fields, each non-empty
/// (the last may be empty when `empty_last`), after checking the header. Returns each row
/// with its 1-based line number. Blank lines are skipped; a UTF-8 byte-order mark and
/// `\r\n` line ends are accepted.
fn rows<'a, const N: usize>(
    text: &'a str,
    header: [&str; N],
    empty_last: bool,
) -> Result<Vec<(usize, [&'a str; N])>, ParseError> {
    let shown = header.join("\\t");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
    let Some((_, first)) = lines.next().filter(|(_, l)| !l.trim().is_empty()) else {
        return Err(ParseError::Empty { expected: shown });
    };
    if !first.split('\t').map(str::trim).eq(header.iter().copied()) {
        return Err(ParseError::Header {
            expected: shown,
            found: first.replace('\t', "\\t"),
        });
    }
    let mut out = Vec::new();
    for (line, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let mut fields = [""; N];
        let mut n = 0;
        for f in l.split('\t') {
            if n < N {
                fields[n] = f.trim();
            }
            n += 1;
        }
        if n != N {
            return Err(ParseError::Line {
                line,
                message: format!("expected {N} tab-separated fields ({}), found {n}", header.join(", ")),
            });
        }
        let required = if empty_last { N - 1 } else { N };
        if let Some(i) = fields[..required].iter().position(|f| f.is_empty()) {
            return Err(ParseError::Line {
                line,
                message: format!("the {} field is empty", header[i]),
            });
        }
        out.push((line, fields));
    }
    if out.is_empty() {
        return Err(ParseError::NoRows);
    }
    Ok(out)
}

/// Parses an answers file (`worker\ttask\tlabel`, header first) into a [`CrowdData`].
pub fn parse_answers(text: &str) -> Result<CrowdData, ParseError> {
    let rows = rows(text, ANSWERS_HEADER, false)?;
    CrowdData::from_answers(rows.iter().map(|(_, [w, t, l])| (*w, *t, *l))).map_err(|e| match e {
        CrowdDataError::Empty => ParseError::NoRows,
        CrowdDataError::DuplicateAnswer {
            worker,
            task,
            first,
            second,
        } => ParseError::Line {
            line: rows[second].0,
            message: format!(
                "worker {worker:?} already answered task {task:?} on line {}",
                rows[first].0
            ),
        },
    })
}

/// One row of a set-valued answers file: a worker's set of labels for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAnswer<'a> {
    pub worker: &'a str,
    pub task: &'a str,
    /// The labels as written (a label repeated within a set stays repeated); empty for
    /// "none of these".
    pub labels: Vec<&'a str>,
}

/// Parses a set-valued answers file (multi-label answers): the `worker\ttask\tlabel`
/// header and rows whose label field is a `|`-separated set of labels, empty for "none of
/// these" (`w1\tt3\t`). Errors name the line: an empty label inside a set (`a||b`, `a|`),
/// a worker answering a task twice.
pub fn parse_set_answers(text: &str) -> Result<Vec<SetAnswer<'_>>, ParseError> {
    let rows = rows(text, ANSWERS_HEADER, true)?;
    let mut seen: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for (line, [worker, task, field]) in rows {
        if let Some(first) = seen.insert((worker, task), line) {
            return Err(ParseError::Line {
                line,
                message: format!("worker {worker:?} already answered task {task:?} on line {first}"),
            });
        }
        let labels: Vec<&str> = if field.is_empty() {
            Vec::new()
        } else {
            field.split('|').map(str::trim).collect()
        };
        if labels.iter().any(|l| l.is_empty()) {
            return Err(ParseError::Line {
                line,
                message: format!("the label set {field:?} has an empty label (labels are separated by `|`)"),
            });
        }
        out.push(SetAnswer { worker, task, labels });
    }
    Ok(out)
}

/// Parses a gold file (`task\tlabel`, header first) into (task, label) pairs, in file
/// order. A task may appear only once.
pub fn parse_gold(text: &str) -> Result<Vec<(&str, &str)>, ParseError> {
    let rows = rows(text, GOLD_HEADER, false)?;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for (line, [task, label]) in rows {
        if let Some(first) = seen.insert(task, line) {
            return Err(ParseError::Line {
                line,
                message: format!("task {task:?} already has a gold label on line {first}"),
            });
        }
        out.push((task, label));
    }
    Ok(out)
}

/// Label order: integers by value when every name is an integer (ties between spellings
/// such as `01` and `1` broken by string order), string order otherwise.
fn label_order(names: &mut [String]) -> bool {
    let numeric = names.iter().all(|n| n.parse::<i64>().is_ok());
    if numeric {
        names.sort_by_cached_key(|n| (n.parse::<i64>().expect("checked"), n.clone()));
    } else {
        names.sort_unstable();
    }
    numeric
}

fn compare_names(numeric: bool, a: &str, b: &str) -> Ordering {
    if numeric {
        match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
            // Not an integer: not one of the names, and any answer will do for a search.
            _ => Ordering::Less,
        }
    } else {
        a.cmp(b)
    }
}

/// Crowd answers interned to `u32` indices, stored as flat arrays sorted by task.
///
/// Worker `w` is `workers()[w]`, and so on. The answers of task `t` are the positions
/// `task_range(t)` of `answer_workers()` / `answer_labels()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrowdData {
    workers: Vec<String>,
    tasks: Vec<String>,
    labels: Vec<String>,
    tasks_numeric: bool,
    labels_numeric: bool,
    /// `task_start[t]..task_start[t + 1]` are task `t`'s answers; length `tasks + 1`.
    task_start: Vec<u32>,
    /// Per answer, sorted by (task, worker).
    answer_worker: Vec<u32>,
    answer_label: Vec<u32>,
}

impl CrowdData {
    /// Builds the dataset from (worker, task, label) answers in any order.
    pub fn from_answers<'a>(
        answers: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<Self, CrowdDataError> {
        // Intern in order of first appearance, then renumber into canonical order.
        fn intern<'a>(map: &mut HashMap<&'a str, u32>, names: &mut Vec<&'a str>, s: &'a str) -> u32 {
            *map.entry(s).or_insert_with(|| {
                names.push(s);
                (names.len() - 1) as u32
            })
        }
        let (mut wm, mut tm, mut lm) = (HashMap::new(), HashMap::new(), HashMap::new());
        let (mut wn, mut tn, mut ln) = (Vec::new(), Vec::new(), Vec::new());
        let mut raw: Vec<(u32, u32, u32, u32)> = Vec::new();
        for (i, (w, t, l)) in answers.into_iter().enumerate() {
            let w = intern(&mut wm, &mut wn, w);
            let t = intern(&mut tm, &mut tn, t);
            let l = intern(&mut lm, &mut ln, l);
            raw.push((t, w, l, i as u32));
        }
        if raw.is_empty() {
            return Err(CrowdDataError::Empty);
        }
        let canon = |names: &[&str], numeric_order: bool| -> (Vec<String>, Vec<u32>, bool) {
            let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let numeric = if numeric_order {
                label_order(&mut sorted)
            } else {
                sorted.sort_unstable();
                false
            };
            let pos: HashMap<&str, u32> = sorted.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
            let remap = names.iter().map(|s| pos[s]).collect();
            (sorted, remap, numeric)
        };
        let (workers, wmap, _) = canon(&wn, false);
        let (tasks, tmap, tasks_numeric) = canon(&tn, true);
        let (labels, lmap, labels_numeric) = canon(&ln, true);
        for a in &mut raw {
            *a = (tmap[a.0 as usize], wmap[a.1 as usize], lmap[a.2 as usize], a.3);
        }
        raw.sort_unstable();
        if let Some(pair) = raw.windows(2).find(|p| p[0].0 == p[1].0 && p[0].1 == p[1].1) {
            return Err(CrowdDataError::DuplicateAnswer {
                worker: workers[pair[0].1 as usize].clone(),
                task: tasks[pair[0].0 as usize].clone(),
                first: pair[0].3.min(pair[1].3) as usize,
                second: pair[0].3.max(pair[1].3) as usize,
            });
        }
        let mut task_start = vec![0u32; tasks.len() + 1];
        for a in &raw {
            task_start[a.0 as usize + 1] += 1;
        }
        for t in 0..tasks.len() {
            task_start[t + 1] += task_start[t];
        }
        Ok(Self {
            workers,
            tasks,
            labels,
            tasks_numeric,
            labels_numeric,
            task_start,
            answer_worker: raw.iter().map(|a| a.1).collect(),
            answer_label: raw.iter().map(|a| a.2).collect(),
        })
    }

    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }
    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }
    pub fn n_labels(&self) -> usize {
        self.labels.len()
    }
    pub fn n_answers(&self) -> usize {
        self.answer_worker.len()
    }
    /// Worker names, in string order.
    pub fn workers(&self) -> &[String] {
        &self.workers
    }
    /// Task names, in label order.
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }
    /// Label names, in label order: index 0 is "the smallest label".
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// The positions of task `t`'s answers in [`Self::answer_workers`] / [`Self::answer_labels`].
    pub fn task_range(&self, t: usize) -> Range<usize> {
        self.task_start[t] as usize..self.task_start[t + 1] as usize
    }
    /// The number of answers task `t` has.
    pub fn task_len(&self, t: usize) -> usize {
        (self.task_start[t + 1] - self.task_start[t]) as usize
    }
    /// The worker of each answer (answers sorted by task, then worker).
    pub fn answer_workers(&self) -> &[u32] {
        &self.answer_worker
    }
    /// The label of each answer (answers sorted by task, then worker).
    pub fn answer_labels(&self) -> &[u32] {
        &self.answer_label
    }
    /// The task of every answer, in answer order.
    pub fn answer_tasks(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.n_answers());
        for t in 0..self.n_tasks() {
            out.extend(std::iter::repeat_n(t as u32, self.task_len(t)));
        }
        out
    }

    pub fn task_index(&self, name: &str) -> Option<u32> {
        let numeric = self.tasks_numeric;
        self.tasks
            .binary_search_by(|x| compare_names(numeric, x, name))
            .ok()
            .map(|i| i as u32)
    }
    pub fn label_index(&self, name: &str) -> Option<u32> {
        let numeric = self.labels_numeric;
        self.labels
            .binary_search_by(|x| compare_names(numeric, x, name))
            .ok()
            .map(|i| i as u32)
    }
    pub fn worker_index(&self, name: &str) -> Option<u32> {
        self.workers
            .binary_search_by(|x| x.as_str().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    /// Each worker's answers, sorted by task.
    pub fn by_worker(&self) -> ByWorker {
        let mut starts = vec![0u32; self.n_workers() + 1];
        for &w in &self.answer_worker {
            starts[w as usize + 1] += 1;
        }
        for w in 0..self.n_workers() {
            starts[w + 1] += starts[w];
        }
        let mut next = starts.clone();
        let mut answers = vec![0u32; self.n_answers()];
        let mut tasks = vec![0u32; self.n_answers()];
        // Answers are in task order, so each worker's list comes out sorted by task.
        for t in 0..self.n_tasks() {
            for a in self.task_range(t) {
                let w = self.answer_worker[a] as usize;
                let slot = next[w] as usize;
                answers[slot] = a as u32;
                tasks[slot] = t as u32;
                next[w] += 1;
            }
        }
        ByWorker { starts, answers, tasks }
    }

    /// Matches gold (task, label) pairs to this dataset. Gold for tasks without answers is
    /// counted in `unmatched_tasks` and otherwise ignored; a gold label nobody answered is
    /// kept as [`GoldLabel::Unseen`] (every answer on that task is wrong).
    pub fn gold<'a>(&self, gold: impl IntoIterator<Item = (&'a str, &'a str)>) -> Gold {
        let mut labels = vec![GoldLabel::None; self.n_tasks()];
        let mut unmatched_tasks = 0;
        for (task, label) in gold {
            match self.task_index(task) {
                Some(t) => {
                    labels[t as usize] = match self.label_index(label) {
                        Some(l) => GoldLabel::Label(l),
                        None => GoldLabel::Unseen,
                    }
                }
                None => unmatched_tasks += 1,
            }
        }
        Gold {
            labels,
            unmatched_tasks,
        }
    }

    /// Counts of answers per label.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_labels()];
        for &l in &self.answer_label {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The set of labels each worker used, as a flat `workers × labels` mask.
    pub fn labels_used(&self) -> Vec<bool> {
        let k = self.n_labels();
        let mut used = vec![false; self.n_workers() * k];
        for (&w, &l) in self.answer_worker.iter().zip(&self.answer_label) {
            used[w as usize * k + l as usize] = true;
        }
        used
    }
}

/// A [`CrowdData`]'s answers grouped by worker (a CSR index), each worker's sorted by task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByWorker {
    starts: Vec<u32>,
    answers: Vec<u32>,
    tasks: Vec<u32>,
}

impl ByWorker {
    /// Worker `w`'s answers, as positions in [`CrowdData::answer_labels`], by task.
    pub fn answers(&self, w: u32) -> &[u32] {
        &self.answers[self.starts[w as usize] as usize..self.starts[w as usize + 1] as usize]
    }
    /// The tasks of [`Self::answers`], in the same order.
    pub fn tasks(&self, w: u32) -> &[u32] {
        &self.tasks[self.starts[w as usize] as usize..self.starts[w as usize + 1] as usize]
    }
}

/// The known true label of a task, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldLabel {
    /// No gold for this task.
    None,
    /// The gold label, as an index into [`CrowdData::labels`].
    Label(u32),
    /// A gold label that no answer in the dataset used.
    Unseen,
}

impl GoldLabel {
    pub fn is_known(self) -> bool {
        !matches!(self, GoldLabel::None)
    }
}

/// Gold labels lined up with a dataset's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gold {
    /// One entry per task of the dataset.
    pub labels: Vec<GoldLabel>,
    /// Gold rows whose task has no answers in the dataset.
    pub unmatched_tasks: usize,
}

impl Gold {
    /// Truth taken from predicted labels (one per task), e.g. to score workers against the
    /// majority vote.
    pub fn from_labels(labels: &[u32]) -> Self {
        Self {
            labels: labels.iter().map(|&l| GoldLabel::Label(l)).collect(),
            unmatched_tasks: 0,
        }
    }

    /// Tasks with gold.
    pub fn n_known(&self) -> usize {
        self.labels.iter().filter(|g| g.is_known()).count()
    }

    /// (correct, compared) of one predicted label per task against the gold.
    pub fn hits(&self, predicted: &[u32]) -> (usize, usize) {
        self.hits_where(predicted, |_| true)
    }

    /// Like [`Self::hits`], over the tasks `keep` accepts only.
    pub fn hits_where(&self, predicted: &[u32], keep: impl Fn(usize) -> bool) -> (usize, usize) {
        let (mut correct, mut n) = (0, 0);
        for (t, (g, &p)) in self.labels.iter().zip(predicted).enumerate() {
            if g.is_known() && keep(t) {
                n += 1;
                correct += usize::from(*g == GoldLabel::Label(p));
            }
        }
        (correct, n)
    }

    /// The fraction of gold tasks whose predicted label is right; `None` without gold.
    pub fn accuracy(&self, predicted: &[u32]) -> Option<f64> {
        let (correct, n) = self.hits(predicted);
        (n > 0).then(|| correct as f64 / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOY: &str = "worker\ttask\tlabel\nw2\tt10\t1\nw1\tt2\t0\nw1\tt10\t1\nw3\tt2\t1\n";

    #[test]
    fn set_answers_parse_with_empty_sets_and_refuse_bad_rows() {
        let text = "worker\ttask\tlabel\nw1\tt1\tb|a\nw2\tt1\t a \nw1\tt3\t\n\nw2\tt3\ta\n";
        let rows = parse_set_answers(text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            SetAnswer {
                worker: "w1",
                task: "t1",
                labels: vec!["b", "a"]
            }
        );
        assert_eq!(rows[1].labels, ["a"]);
        assert!(rows[2].labels.is_empty(), "an empty field is the empty set");
        let err = |t: &str| parse_set_answers(t).unwrap_err().to_string();
        assert_eq!(
            err("worker\ttask\tlabel\nw1\tt1\ta\nw1\tt2\ta||b\n"),
            "line 3: the label set \"a||b\" has an empty label (labels are separated by `|`)"
        );
        assert_eq!(
            err("worker\ttask\tlabel\nw1\tt1\ta\nw1\tt1\t\n"),
            "line 3: worker \"w1\" already answered task \"t1\" on line 2"
        );
        assert!(err("worker\ttask\tlabel\nw1\tt1\n").starts_with("line 2: expected 3 tab-separated fields"));
        assert_eq!(
            err("worker\ttask\tlabel\n\tt1\ta\n"),
            "line 2: the worker field is empty"
        );
        // The single-label format still refuses an empty label.
        assert_eq!(
            parse_answers("worker\ttask\tlabel\nw1\tt1\t\n")
                .unwrap_err()
                .to_string(),
            "line 2: the label field is empty"
        );
    }

    #[test]
    fn parses_and_orders_canonically() {
        let d = parse_answers(TOY).unwrap();
        assert_eq!(d.workers(), ["w1", "w2", "w3"]);
        assert_eq!(d.tasks(), ["t10", "t2"], "not all integers: string order");
        assert_eq!(d.labels(), ["0", "1"]);
        assert_eq!(d.n_answers(), 4);
        assert_eq!(d.task_range(0), 0..2);
        assert_eq!(&d.answer_workers()[0..2], [0, 1]);
        assert_eq!(d.answer_tasks(), [0, 0, 1, 1]);
        assert_eq!(d.task_index("t2"), Some(1));
        assert_eq!(d.worker_index("w3"), Some(2));
        assert_eq!(d.label_index("7"), None);
        let by = d.by_worker();
        assert_eq!(by.answers(0), [0, 2]);
        assert_eq!(by.tasks(0), [0, 1]);
        assert_eq!(by.answers(2), [3]);
    }

    #[test]
    fn integer_names_sort_by_value() {
        let d = CrowdData::from_answers([("a", "10", "10"), ("a", "9", "9"), ("a", "100", "-1")]).unwrap();
        assert_eq!(d.tasks(), ["9", "10", "100"]);
        assert_eq!(d.labels(), ["-1", "9", "10"]);
        assert_eq!(d.label_index("10"), Some(2));
        assert_eq!(d.label_index("x"), None);
        assert_eq!(d.task_index("100"), Some(2));
    }

    #[test]
    fn order_of_rows_does_not_matter() {
        let rows = [("w1", "a", "x"), ("w2", "a", "y"), ("w1", "b", "y"), ("w3", "c", "x")];
        let mut rev = rows;
        rev.reverse();
        assert_eq!(
            CrowdData::from_answers(rows).unwrap(),
            CrowdData::from_answers(rev).unwrap()
        );
    }

    #[test]
    fn bad_input_names_the_line() {
        let err = |s: &str| parse_answers(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("\n").contains("empty"));
        assert!(err("worker\ttask\n").contains("line 1: expected the header"));
        assert_eq!(parse_answers("worker\ttask\tlabel\n"), Err(ParseError::NoRows));
        assert_eq!(
            err("worker\ttask\tlabel\nw\tt\t1\nw\tt 1\n"),
            "line 3: expected 3 tab-separated fields (worker, task, label), found 2"
        );
        assert_eq!(err("worker\ttask\tlabel\nw\t\t1\n"), "line 2: the task field is empty");
        assert_eq!(
            err("worker\ttask\tlabel\r\nw\tt\t1\r\n\r\nv\tt\t1\r\nw\tt\t0\r\n"),
            "line 5: worker \"w\" already answered task \"t\" on line 2"
        );
        assert_eq!(
            parse_gold("task\tlabel\nt\t1\nt\t1\n").unwrap_err().to_string(),
            "line 3: task \"t\" already has a gold label on line 2"
        );
    }

    #[test]
    fn gold_lines_up_with_tasks() {
        let d = parse_answers(TOY).unwrap();
        let gold = parse_gold("\u{feff}task\tlabel\nt2\t0\nt10\t5\nzz\t1\n").unwrap();
        let g = d.gold(gold);
        assert_eq!(g.labels, [GoldLabel::Unseen, GoldLabel::Label(0)]);
        assert_eq!(g.unmatched_tasks, 1);
        assert_eq!(g.n_known(), 2);
        assert_eq!(g.hits(&[1, 0]), (1, 2));
        assert_eq!(g.accuracy(&[1, 1]), Some(0.0));
    }
}
