"""The exceptions the harness raises for bad input: one clear type per kind of mistake."""


class HarnessError(Exception):
    """Base class: every error the command line turns into one line and exit status 1 or 2."""


class ModelFileError(HarnessError):
    """A GGUF file that is not a usable Qwen3.5 model (wrong magic, truncated, wrong arch,
    missing or misshapen tensor, unsupported type, ...). The message names the file and
    the tensor or metadata key at fault."""


class UnsupportedModelError(ModelFileError):
    """A well-formed file of a kind we do not run yet (e.g. the qwen35moe architecture)."""


class UsageError(HarnessError):
    """Bad arguments: unknown preset or quant type, out-of-range token id, context overflow, ..."""


class RepackMemoryError(UsageError):
    """repack="on" asked for repacked copies that would leave less than 1 GiB of the available memory."""


class BadArgumentError(UsageError):
    """A bad argument value that is found after the arguments are parsed (a grid axis, a results
    filter, more threads than CPUs): the command line says so in one line, exit status 2."""


class ResultsError(HarnessError):
    """A results directory that cannot be read or written as asked."""


class ResultsCorruptError(ResultsError):
    """A results file that does not parse or lacks the columns of the store; it names the file
    and is never overwritten."""


class ResultsLockedError(ResultsError):
    """Another live process is writing the same results directory."""


class ResultsFilterError(ResultsError, BadArgumentError):
    """A results filter that is not KEY=VALUE / KEY!=VALUE over a column of the right type."""


class MachineNotQuietError(HarnessError):
    """--strict: the machine is not quiet enough to resolve the change asked for (other processes
    taking CPU time the engine's threads need, ...); the message names the reasons."""


class TextError(HarnessError):
    """Text that cannot be tokenized: not UTF-8 (the message names the byte offset), or a file
    without a usable tokenizer for it."""
