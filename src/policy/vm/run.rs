//! Running one entrypoint on this thread's VM: the VMs each thread keeps loaded, the
//! host-await loop that lets programs call verdict's own builtins, and what a VM error means.

use std::cell::RefCell;

use regorus::rvm::vm::{ExecutionMode, ExecutionState, RegoVM, SuspendReason, VmError};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Value;

use super::{Entry, Fallback, FastPath, MAX_INSTRUCTIONS};

impl FastPath {
    /// Runs `entry` on this thread's VM for it, loading one only when the thread has none,
    /// for at most `budget`.
    pub(super) fn run(
        &self,
        entry: &Entry,
        input: Value,
        budget: std::time::Duration,
    ) -> Result<Value, Fallback> {
        let cached = VMS.with(|slot| {
            let mut vms = slot.borrow_mut();
            let at = vms
                .iter()
                .position(|(id, index, _)| *id == self.id && *index == entry.index)?;
            Some(vms.swap_remove(at).2)
        });
        let mut vm = match cached {
            Some(vm) => vm,
            None => self.load(entry)?,
        };
        vm.set_input(input);
        vm.set_execution_timer_config(Some(ExecutionTimerConfig {
            limit: budget,
            check_interval: crate::policy::compile::CHECK_INTERVAL,
        }));
        let _deadline = crate::policy::builtins::deadline_scope(budget);
        let _strict = crate::policy::builtins::strict_scope(false);
        let outcome = crate::policy::guard::stack::contained(|| run_to_end(&mut vm));
        let result = match outcome {
            Ok(result) => result,
            // A VM that panicked is dropped, never reused.
            Err(_) => return Err(Fallback::Panic),
        };
        // The input is not kept alive between decisions.
        vm.set_input(Value::Undefined);
        VMS.with(|slot| {
            let mut vms = slot.borrow_mut();
            if vms.len() >= VMS_PER_THREAD {
                vms.remove(0);
            }
            vms.push((self.id, entry.index, vm));
        });
        result
    }

    fn load(&self, entry: &Entry) -> Result<RegoVM, Fallback> {
        let mut vm = RegoVM::new();
        if entry.suspendable {
            vm.set_execution_mode(ExecutionMode::Suspendable);
        }
        vm.load_program(entry.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|_| Fallback::Error)?;
        vm.set_strict_builtin_errors(false);
        vm.set_max_instructions(max_instructions());
        Ok(vm)
    }
}

/// Runs the program's entrypoint to its end, answering each call of one of verdict's own
/// builtins (a host-await suspension) with what the interpreter's extension would answer.
fn run_to_end(vm: &mut RegoVM) -> Result<Value, Fallback> {
    let mut result = vm.execute_entry_point_by_index(0);
    loop {
        let value = result.map_err(|e| classify(&e))?;
        let (name, args) = match vm.execution_state() {
            ExecutionState::Suspended {
                reason:
                    SuspendReason::HostAwait {
                        argument,
                        identifier,
                        ..
                    },
                ..
            } => (identifier.clone(), argument.clone()),
            ExecutionState::Suspended { .. } => return Err(Fallback::Error),
            _ => return Ok(value),
        };
        let name = name.as_string().map_err(|_| Fallback::Error)?.to_string();
        let args: Vec<Value> = args
            .as_array()
            .map_err(|_| Fallback::Error)?
            .iter()
            .cloned()
            .collect();
        let answer = match crate::policy::builtins::call(&name, args) {
            Some(Ok(answer)) => answer,
            // An error under non-strict evaluation is a resource limit: the interpreter,
            // answering next, reports it as it would have.
            Some(Err(_)) | None => return Err(Fallback::Error),
        };
        result = vm.resume(Some(answer));
    }
}

fn classify(e: &VmError) -> Fallback {
    match e {
        VmError::InstructionLimitExceeded { .. }
        | VmError::TimeLimitExceeded { .. }
        | VmError::MemoryLimitExceeded { .. }
        | VmError::RegexSizeLimitExceeded { .. } => Fallback::Limit,
        _ => Fallback::Error,
    }
}

/// VMs kept per thread: one per entrypoint served lately.
const VMS_PER_THREAD: usize = 8;

thread_local! {
    /// The VMs this thread last ran, by fast path and entrypoint, loaded with program and data.
    static VMS: RefCell<Vec<(u64, usize, RegoVM)>> = const { RefCell::new(Vec::new()) };
}

#[cfg(not(test))]
fn max_instructions() -> usize {
    MAX_INSTRUCTIONS
}

/// Unit tests lower the limit on their own thread to drive the fallback.
#[cfg(test)]
fn max_instructions() -> usize {
    tests::MAX_INSTRUCTIONS
        .with(|m| m.get())
        .unwrap_or(MAX_INSTRUCTIONS)
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    thread_local! {
        pub static MAX_INSTRUCTIONS: Cell<Option<usize>> = const { Cell::new(None) };
        /// Makes `serve` hand the shadow check a wrong VM answer.
        pub static TAMPER: Cell<bool> = const { Cell::new(false) };
    }
}
