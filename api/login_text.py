"""What the login page says, in Spanish (the CHWs' language), with each scope in plain words.

A CHW deciding whether to let an app in should read "Ver y buscar los pacientes a los que tiene
acceso", not `user/Patient.rs`. The raw scope stays in the item's `title` for whoever supports them.
"""

from __future__ import annotations

from auth.scopes import parse_scope

TITLE = "Ingresar a Puente"
USERNAME = "Usuario"
PASSWORD = "Contraseña"
PATIENT = "Código del paciente"
ALLOW = "Ingresar y permitir"
CANCEL = "Cancelar"
WRONG_LOGIN = "Usuario o contraseña incorrectos."
LOCKED = "Demasiadas contraseñas incorrectas: esta cuenta queda bloqueada durante {seconds} s."
CHOOSE_PATIENT = "Elija un paciente que usted pueda ver."
FAILED = "No se pudo autorizar"
FAILED_WHY = (
    "La aplicación que le trajo aquí no está registrada en Puente, o pidió volver a una dirección que no "
    "tiene registrada. Avise a quien administra la aplicación; el detalle técnico está abajo."
)
ASKS = "quiere usar Puente en su nombre para:"
REGISTERED = "lo que la aplicación tiene registrado"

_OTHER = {
    "openid": "Saber quién es usted (su nombre de usuario)",
    "fhirUser": "Saber qué trabajador de salud es usted en Puente",
    "profile": "Ver su nombre",
    "offline_access": "Seguir sincronizando aunque pasen días sin conexión",
    "online_access": "Seguir conectada mientras usted use la aplicación",
    "launch/patient": "Elegir con qué paciente trabajar",
    "launch": "Abrirse desde otro sistema de salud",
}
_ACTIONS = {"c": "registrar", "r": "ver", "u": "actualizar", "d": "borrar", "s": "buscar"}
_TYPES = {
    "*": "todos los datos de salud",
    "Patient": "los pacientes",
    "RelatedPerson": "los familiares de los pacientes",
    "Observation": "las mediciones (peso, talla, hemoglobina)",
    "Immunization": "las vacunas",
    "ServiceRequest": "las referencias al centro de salud",
    "Task": "las tareas de las referencias",
    "Encounter": "las visitas y atenciones",
    "Condition": "los diagnósticos",
    "Flag": "las alertas",
    "Practitioner": "el personal de salud",
    "Organization": "los establecimientos",
    "Location": "los lugares",
    "CareTeam": "los equipos de cuidado",
}
_WHOSE = {
    "user": "a los que usted tiene acceso",
    "patient": "del paciente elegido",
    "system": "que este sistema puede ver",
}


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} y {words[-1]}"


def describe_scope(scope: str) -> str:
    """One scope as a sentence a CHW understands."""
    if scope in _OTHER:
        return _OTHER[scope]
    parsed = parse_scope(scope)
    if parsed is None:
        return f"Un permiso que Puente no reconoce ({scope})"
    actions = [word for letter, word in _ACTIONS.items() if letter in parsed.permissions]
    what = _TYPES.get(parsed.resource_type, f"los registros de tipo {parsed.resource_type}")
    sentence = f"{_join(actions)} {what} {_WHOSE[parsed.context]}"
    return sentence[0].upper() + sentence[1:]
