"""The studio: the offline page's use case (read a primer, generate beats, keep their MIDI files) and its routes.

Generated files go into a folder of the studio's own (a fresh temporary folder), are streamed to the
browser on request and removed when the studio closes: nothing is written where the user keeps files.
"""
import random
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from deepbeat.drums import DRUM_CLASSES, DRUM_LABELS
from deepbeat.errors import PrimerError
from deepbeat.grid import STEPS_PER_BAR, SYMBOL_VELOCITIES
from deepbeat.notemaps import GM
from deepbeat.primer import parse_step_text, primer_from_midi
from deepbeat.runtime.generate import continue_primer, write_beats
from deepbeat.runtime.steering import Groove
from deepbeat.tempo import DEFAULT_BPM, MAX_BPM, MIN_BPM, check_bpm

from .controls import catalog, lock_groups_json, presets_json, settings_from_json
from .gridjson import grid_from_json, grid_json
from .server import LOOPBACK, RequestError, Response, WebServer

STUDIO_PORT = 8765
DEFAULT_BARS, MAX_BARS = 4, 16  # bars generated after the primer, per beat
DEFAULT_OUTPUTS, MAX_OUTPUTS = 3, 8  # beats per generation
MAX_PRIMER_BARS = 4  # bars of a MIDI file taken as the primer
KEPT_BEATS = 64  # beats whose files stay downloadable; older ones are removed
MAX_NUMBER = 2**31 - 1  # the largest seed or beat id a page may send


class Studio:
    """Generates beats with one model for the studio page, and keeps the latest KEPT_BEATS as MIDI files."""

    def __init__(self, model, note_map=GM):
        self.model, self.note_map = model, note_map
        self.folder = Path(tempfile.mkdtemp(prefix="deepbeat-studio-"))
        self._beats = OrderedDict()  # id -> MIDI file path
        self._next_id = 1
        self._lock = threading.Lock()  # one generation at a time: the model's threads are the machine's

    @property
    def styles(self):
        return list(self.model.encoding.styles)

    def setup(self):
        """What the page builds itself from: drums, controls, presets, lock groups, limits."""
        return {
            "model": Path(self.model.path).name, "drums": list(DRUM_CLASSES), "labels": list(DRUM_LABELS),
            "controls": catalog(self.styles), "presets": presets_json(), "lock_groups": lock_groups_json(),
            "cell_velocities": [0, *sorted(SYMBOL_VELOCITIES.values())], "steps_per_bar": STEPS_PER_BAR,
            "bpm": {"low": MIN_BPM, "high": MAX_BPM, "default": DEFAULT_BPM},
            "bars": {"high": MAX_BARS, "default": DEFAULT_BARS},
            "outputs": {"high": MAX_OUTPUTS, "default": DEFAULT_OUTPUTS},
            "primer_bars": {"high": MAX_PRIMER_BARS}, "seed": {"high": MAX_NUMBER},
        }

    def read_text(self, text):
        """The primer typed as step text, padded to whole bars."""
        if not isinstance(text, str):
            raise RequestError("text: expected step text, e.g. 'kick: x...x...'")
        return {"primer": grid_json(parse_step_text(text).padded_to_bars())}

    def read_midi(self, data, name, bars):
        """The first `bars` bars of an uploaded MIDI file (bytes) as the primer, and the notes left out."""
        upload = self.folder / "upload"
        upload.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=upload, suffix=".mid") as file:
            file.write(data)
            file.flush()
            try:
                primer, dropped = primer_from_midi(file.name, bars, pitches=self.note_map.inputs)
            except PrimerError as error:  # name the user's file, not our temporary copy of it
                raise PrimerError(str(error).replace(file.name, name)) from None
        return {"primer": grid_json(primer), "bpm": primer.bpm,
                "dropped": {str(pitch): count for pitch, count in sorted(dropped.items())}}

    def generate(self, request):
        """Beats continuing request["primer"]: {"beats": [{"id", "name", "grid", "primer_steps"}], "seed"}."""
        primer = grid_from_json(request.get("primer"), "primer")
        primer = replace(primer.padded_to_bars(), bpm=check_bpm(request.get("bpm", DEFAULT_BPM)))
        bars = _whole(request.get("bars", DEFAULT_BARS), "bars", 1, MAX_BARS)
        outputs = _whole(request.get("outputs", DEFAULT_OUTPUTS), "outputs", 1, MAX_OUTPUTS)
        seed = request.get("seed")
        seed = random.randint(0, MAX_NUMBER) if seed is None else _whole(seed, "seed", 0, MAX_NUMBER)
        steering, feel = settings_from_json(request.get("settings", {}), self.styles)
        if request.get("groove", False) is True:
            feel = replace(feel, groove=Groove.of(primer))
        with self._lock:
            beats = continue_primer(self.model, primer, bars * STEPS_PER_BAR, steering, num_outputs=outputs,
                                    seed=seed)
            paths = write_beats(beats, self.folder, self.note_map, primer.num_steps, feel)
            results = []
            for beat, path in zip(beats, paths):
                results.append({"id": self._keep(path), "name": path.name, "primer_steps": primer.num_steps,
                                "grid": grid_json(beat, primer.num_steps, feel)})
        return {"beats": results, "seed": seed}

    def _keep(self, path):
        """An id for a new MIDI file; the oldest beyond KEPT_BEATS are removed."""
        beat_id, self._next_id = self._next_id, self._next_id + 1
        self._beats[beat_id] = path
        while len(self._beats) > KEPT_BEATS:
            self._beats.popitem(last=False)[1].unlink(missing_ok=True)
        return beat_id

    def midi(self, beat_id):
        """(bytes, file name) of a generated beat's MIDI file."""
        with self._lock:
            path = self._beats.get(beat_id)
        if path is None:
            raise RequestError(f"beat {beat_id} is not kept any more (only the last {KEPT_BEATS} are); "
                               "generate again", 404)
        return path.read_bytes(), path.name

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def _whole(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{name} {value!r}: expected a whole number {low}-{high}")
    return value


def studio_routes(studio):
    """The studio's API: setup, primer from text or MIDI, generate, download."""
    def upload(request):
        name = Path(request.query.get("name") or "upload.mid").name
        bars = request.whole_number("bars", 1, MAX_PRIMER_BARS, default=1)
        if not request.body:
            raise RequestError(f"{name}: the file is empty")
        return Response.json(studio.read_midi(request.body, name, bars))

    def download(request):
        data, name = studio.midi(request.whole_number("id", 1, MAX_NUMBER))
        return Response.download(data, name)

    return {
        ("GET", "/api/studio/setup"): lambda request: Response.json(studio.setup()),
        ("POST", "/api/studio/text"): lambda request: Response.json(studio.read_text(request.json().get("text"))),
        ("POST", "/api/studio/midi"): upload,
        ("POST", "/api/studio/generate"): lambda request: Response.json(studio.generate(request.json())),
        ("GET", "/api/studio/beat.mid"): download,
    }


def serve_studio(studio, host=LOOPBACK, port=STUDIO_PORT, token=None):
    """A WebServer (not yet started) for the studio page."""
    return WebServer(studio_routes(studio), "studio.html", host, port, token, name="deepbeat studio")
