"""What lets Connexion 3.3 serve this OpenAPI 3.1 contract as AgentOS answers it.

* :mod:`.spec`: the document, read from the package and checked as 3.1;
* :mod:`.serving`: Connexion's AsyncApp registering it, its operations decorated once;
* :mod:`.validators`: JSON Schema 2020-12 validation of parameters and bodies;
* :mod:`.entries` and :mod:`.responses`: FastAPI's error entries and error bodies.
"""
