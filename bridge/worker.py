"""The generation worker: a thread that runs the composer's jobs in order, off the tick path."""
import queue
import threading


class GenerationWorker:
    """A daemon thread running submitted jobs one after another.

    The first job that raises stops the worker; `error` holds it and `on_error` is called
    (from the worker thread) so the bridge can stop cleanly.
    """

    def __init__(self, on_error=None):
        self.error = None
        self._on_error = on_error
        self._jobs = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="deepbeat-generation", daemon=True)
        self._thread.start()

    def submit(self, job, *args):
        self._jobs.put((job, args))

    def close(self, timeout=2.0):
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self):
        while True:
            item = self._jobs.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    job, args = item
                    job(*args)
            except Exception as error:  # reported to the bridge, which stops with a message
                self.error = error
                if self._on_error:
                    self._on_error(error)
            finally:
                self._jobs.task_done()
