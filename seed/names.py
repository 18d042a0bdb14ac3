"""Spanish given names and surnames common in northern coastal Peru (synthetic people only)."""

from __future__ import annotations

FEMALE = (
    "María", "Rosa", "Ana", "Luz", "Carmen", "Juana", "Elena", "Isabel", "Milagros", "Yessenia",
    "Marisol", "Sonia", "Gladys", "Flor", "Patricia", "Karina", "Lucía", "Diana", "Katherine",
    "Yuliana", "Jessica", "Rocío", "Silvia", "Maribel", "Nelly", "Elizabeth", "Fiorella", "Medaly",
    "Sandra", "Vanessa", "Teresa", "Mercedes", "Susana", "Edith", "Rosmery", "Evelyn", "Liliana",
    "Noemí", "Ruth", "Esther", "Sofía", "Valentina", "Camila", "Ximena", "Mía", "Luciana", "Valeria",
    "Ariana", "Alessandra", "Kiara", "Danna", "Zoe", "Antonella", "Micaela", "Abigail", "Naomi",
    "Isabella", "Emily", "Fernanda", "Nicole", "Daniela", "Andrea", "Gabriela", "Alexandra",
)
MALE = (
    "José", "Luis", "Juan", "Carlos", "Jorge", "Miguel", "César", "Víctor", "Manuel", "Pedro",
    "Segundo", "Wilmer", "Edwin", "Julio", "Raúl", "Walter", "Javier", "Santiago", "Mateo",
    "Thiago", "Liam", "Sebastián", "Gael", "Dylan", "Adriano", "Matías", "Benjamín", "Joaquín",
    "Gabriel", "Daniel", "Alessandro", "Leonardo", "Fabricio", "Jhon", "Ángel", "Samuel", "Diego",
    "Emiliano", "Rodrigo", "Álvaro", "Franco", "Jesús", "Nicolás", "Valentino", "Piero", "Josué",
    "Cristian", "Kevin", "Anderson", "Elías", "Renato", "Bruno", "Aarón", "Jeremy",
)
SURNAMES = (
    "Rodríguez", "Sánchez", "García", "Flores", "Rojas", "Chávez", "Díaz", "Vásquez", "Ramírez",
    "Castillo", "Gutiérrez", "Mendoza", "Cruz", "Reyes", "Torres", "Quispe", "Huamán", "Alvarado",
    "Mercado", "Cabrera", "Gonzales", "Romero", "Zavaleta", "Alfaro", "Rebaza", "Ávila", "Paredes",
    "Vargas", "León", "Moreno", "Polo", "Ruiz", "Lozano", "Benites", "Rubio", "Salazar", "Cueva",
    "Valverde", "Otiniano", "Carranza", "Aguilar", "Mostacero", "Tantaleán", "Loyola", "Bazán",
    "Jara", "Gamboa", "Villanueva", "Sagástegui", "Horna", "Plasencia", "Ventura", "Pretel", "Medina",
    "Urquiza", "Ponce", "Acosta", "Castañeda", "Jiménez", "Rosales", "Lázaro", "Anticona", "Nureña",
    "Cerna", "Saldaña", "Esquivel", "Guevara", "Arana", "Calderón", "Pérez", "Silva", "Ríos",
)
# Venezuelan migrants are a visible share of La Libertad's population; same language, other surnames.
MIGRANT_SURNAMES = (
    "Hernández", "Pérez", "González", "Rodríguez", "Martínez", "Marcano", "Briceño", "Colmenares",
    "Bracho", "Urdaneta", "Guerrero", "Parra", "Sequera", "Carrasquel", "Mijares", "Linares",
)
STREETS = ("Mz.", "Jr.", "Calle", "Pasaje", "Av.")
