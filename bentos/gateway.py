"""Gateway: the one BentoML service that OpsSeer's workers call, composing the model services.

`bentoml serve bentos.gateway:Gateway` (or `bentoml serve` with bentofile.yaml) starts the gateway and
every dependency as separate processes. The gateway validates each request, then calls the dependency
through BentoML's internal client, so adaptive batching merges concurrent requests and a bad input gets
its own 4xx without failing the other requests batched with it.
"""

import logging
from pathlib import Path

import anyio
import bentoml
from bentoml.exceptions import UnprocessableEntity

from bentos.asr.audio import check_size, decode
from bentos.asr.limits import UploadSizeLimit
from bentos.asr.schemas import Clip, Transcript
from bentos.asr.service import SpeechToText
from bentos.asr.settings import get_asr_settings
from bentos.asr.transcriber import check_language
from bentos.docqa.schemas import Answer, Question
from bentos.docqa.service import RunbookQA
from bentos.forecaster.errors import ForecastInputError
from bentos.forecaster.hygiene import prepare_batch
from bentos.forecaster.schema import ForecastOut, SeriesIn
from bentos.forecaster.service import Forecaster

logger = logging.getLogger(__name__)

ASR_SETTINGS = get_asr_settings()
# The gateway waits for the slowest capability: a long recording on the CPU.
REQUEST_TIMEOUT_SECONDS = max(120, ASR_SETTINGS.request_timeout_seconds)


@bentoml.service(name="gateway", resources={"cpu": "1", "memory": "1Gi"}, traffic={"timeout": REQUEST_TIMEOUT_SECONDS})
class Gateway:
    """Route each capability's API to its model service."""

    forecaster = bentoml.depends(Forecaster)
    runbook_qa = bentoml.depends(RunbookQA)
    asr = bentoml.depends(SpeechToText)

    def __init__(self) -> None:
        self.asr_settings = get_asr_settings()
        self.asr_languages: frozenset[str] | None = None

    @bentoml.api
    async def forecast(self, series: list[SeriesIn]) -> list[ForecastOut]:
        """Validate every series (422 naming the index and the fix), then forecast them in the Forecaster's batches."""
        if not series:
            raise UnprocessableEntity("series is empty; send at least one series")
        try:
            prepare_batch(series)
        except ForecastInputError as exc:
            raise UnprocessableEntity(str(exc)) from exc
        results = await self.forecaster.to_async.predict(series=[item.model_dump() for item in series])
        return [ForecastOut.model_validate(result) for result in results]

    @bentoml.api
    async def ask(self, question: str, top_k: int = 3, source_hint: str | None = None) -> Answer:
        """Answer one question from the runbooks; an empty or too long question or a bad top_k gets 422."""
        # Validating here raises the 422 in the gateway, before the request reaches RunbookQA's batches.
        request = Question(question=question, top_k=top_k, source_hint=source_hint)
        answers = await self.runbook_qa.to_async.answer(questions=[request.model_dump()])
        return Answer.model_validate(answers[0])

    async def _asr_languages(self) -> frozenset[str]:
        if self.asr_languages is None:
            self.asr_languages = frozenset(await self.asr.to_async.languages())
        return self.asr_languages

    @bentoml.api
    async def transcribe(self, audio: Path, language: str | None = None) -> Transcript:
        """Transcribe an uploaded WAV, FLAC or MP3 recording (multipart field "audio").

        The upload is checked and decoded here, before it joins a batch, so a bad file gets its own
        413 or 422.
        """
        check_size(audio.stat().st_size, max_bytes=self.asr_settings.max_bytes)
        check_language(language, await self._asr_languages(), model="the speech-to-text model")
        decoded = await anyio.to_thread.run_sync(lambda: decode(audio, max_seconds=self.asr_settings.max_seconds))
        logger.info(
            "transcribing %.1f s of %s audio (%d Hz, %d channels)",
            decoded.duration_seconds, decoded.source_format, decoded.source_sample_rate, decoded.source_channels,
        )
        results = await self.asr.to_async.transcribe_batch([Clip(samples=decoded.samples, language=language)])
        return Transcript.model_validate(results[0], from_attributes=True)


Gateway.add_asgi_middleware(UploadSizeLimit, paths=("/transcribe",), max_bytes=ASR_SETTINGS.max_bytes)
