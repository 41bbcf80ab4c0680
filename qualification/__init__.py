"""Qualification tests, attempts and grants; gold questions and their grading."""
