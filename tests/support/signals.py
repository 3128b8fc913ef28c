"""Children that take Ctrl-C. A shell starts background jobs (`cmd &`, as CI scripts do) with SIGINT
ignored, the child inherits that, and a Python started so never raises KeyboardInterrupt: a test that
sends SIGINT to a child restores the default first (Popen(..., preexec_fn=sigint_default))."""
import signal


def sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
