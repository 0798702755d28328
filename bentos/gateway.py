"""BentoML service `Gateway`: the one public HTTP API of OpsSeer's model services.

`bentoml serve` (bentofile.yaml) serves this class; each composed service runs in its own process and is
called through `bentoml.depends`.
"""

import logging

import bentoml

from bentos.docqa.schemas import Answer, Question
from bentos.docqa.service import RunbookQA

logger = logging.getLogger(__name__)


@bentoml.service(name="gateway", traffic={"timeout": 120})
class Gateway:
    """Route each capability's API to its model service."""

    runbook_qa = bentoml.depends(RunbookQA)

    @bentoml.api
    async def ask(self, question: str, top_k: int = 3, source_hint: str | None = None) -> Answer:
        """Answer one question from the runbooks; an empty or too long question or a bad top_k gets 422."""
        # Validating here raises the 422 in the gateway, before the request reaches RunbookQA's batches.
        request = Question(question=question, top_k=top_k, source_hint=source_hint)
        answers = await self.runbook_qa.to_async.answer(questions=[request.model_dump()])
        return Answer.model_validate(answers[0])
