"""BentoML service `Gateway`: the one public HTTP API of OpsSeer's model services.

`bentoml serve` (bentofile.yaml) serves this class; each composed service runs in its own process and is
called through `bentoml.depends`.
"""

import logging

import bentoml
from bentoml.exceptions import UnprocessableEntity

from bentos.forecaster.errors import ForecastInputError
from bentos.forecaster.hygiene import prepare_batch
from bentos.forecaster.schema import ForecastOut, SeriesIn
from bentos.forecaster.service import Forecaster

logger = logging.getLogger(__name__)


@bentoml.service(name="gateway", traffic={"timeout": 120})
class Gateway:
    """Route each capability's API to its model service."""

    forecaster = bentoml.depends(Forecaster)

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
